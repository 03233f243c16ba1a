"""setup.py -- the parts of the build pyproject.toml cannot state: the
version (from tokenformer/__init__.py, read as text: importing the package
would load the library) and the shared library copied into the package.

The library bundled is $TOKENFORMER_LIBRARY if set, else build/libtokenformer.so.0
of the source tree this directory belongs to (`make` first).  It goes into
the package as libtokenformer.so.0, the first place tokenformer/_lib.py
looks, so the installed package needs neither LD_LIBRARY_PATH nor ldconfig;
the wheel is then tagged for this platform.  Without a library the package
is pure Python and loads the library through the system loader at import.
"""
import os
import re
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libtokenformer.so.0"


def version():
    with open(os.path.join(HERE, "tokenformer", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def library():
    """The shared library to bundle, or None."""
    env = os.environ.get("TOKENFORMER_LIBRARY")
    if env:
        if not os.path.isfile(env):
            sys.exit("setup.py: TOKENFORMER_LIBRARY=%s is not a file" % env)
        return env
    tree = os.path.join(HERE, "..", "..", "build", SONAME)
    return tree if os.path.isfile(tree) else None


LIB = library()


class BuildPy(build_py):
    def run(self):
        super().run()
        if LIB:
            dest = os.path.join(self.build_lib, "tokenformer", SONAME)
            shutil.copyfile(os.path.realpath(LIB), dest)
            os.chmod(dest, 0o755)
            print("setup.py: bundling %s as tokenformer/%s" % (os.path.realpath(LIB), SONAME))
        else:
            print("setup.py: no library to bundle (run make, or set TOKENFORMER_LIBRARY); "
                  "the package will use the system loader's libtokenformer.so.0",
                  file=sys.stderr)


class PlatformDistribution(Distribution):
    """A wheel with a bundled shared library is not pure Python."""

    def has_ext_modules(self):
        return LIB is not None


setup(version=version(), cmdclass={"build_py": BuildPy}, distclass=PlatformDistribution)
