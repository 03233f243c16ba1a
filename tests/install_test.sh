#!/usr/bin/env bash
# install_test.sh -- `make install` into a DESTDIR works for a C, a C++ and
# a Python user outside the tree, and `make uninstall` removes every file.
#
#   tests/install_test.sh          (make check runs it; MAKE, PYTHON, CC, CXX
#                                   may be set)
#
# 1. make install PREFIX=/usr DESTDIR=$tmp/dest; the expected files are there.
# 2. pkg-config with PKG_CONFIG_PATH=$dest/usr/lib/pkgconfig and
#    PKG_CONFIG_SYSROOT_DIR=$dest (the .pc holds absolute libdir/includedir,
#    which --define-prefix does not relocate; the sysroot prefixes every -I
#    and -L instead).  A C program and tests/cpp_smoke.cpp, copied out of the
#    tree, are built with `pkg-config --cflags --libs tokenformer` and run
#    with LD_LIBRARY_PATH=$dest/usr/lib; a C program is also linked against
#    libtokenformer.a with `pkg-config --static --libs` (which must list
#    -lblis) and runs without the shared library.
# 3. /usr/bin/python3 imports the package from the install location
#    (PYTHONPATH, no LD_LIBRARY_PATH: it finds the library through the
#    symlink in its directory) and runs a forward.
# 4. make uninstall with the same variables leaves only empty directories.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
MAKE=${MAKE:-make}
PYTHON=${PYTHON:-/usr/bin/python3}
CC=${CC:-cc}
CXX=${CXX:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
work=$tmp/work
mkdir -p "$work"
say() { echo "install_test: $*"; }
die() { echo "install_test: FAIL: $*" >&2; exit 1; }
unset TOKENFORMER_LIBRARY

vars=(PREFIX=/usr DESTDIR="$dest")

# ---- 1. install ------------------------------------------------------------
"$MAKE" --no-print-directory install "${vars[@]}" > "$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; die "make install failed"; }
ver() { sed -n "s/^#define TF_VERSION_$1 \([0-9]*\).*/\1/p" include/tokenformer.h; }
version=$(ver MAJOR).$(ver MINOR).$(ver PATCH)
major=$(ver MAJOR)
pydir=$dest/usr/lib/python3/dist-packages/tokenformer
for f in usr/include/tokenformer.h usr/lib/libtokenformer.so.$version \
         usr/lib/libtokenformer.so.$major usr/lib/libtokenformer.so usr/lib/libtokenformer.a \
         usr/lib/pkgconfig/tokenformer.pc usr/lib/python3/dist-packages/tokenformer/__init__.py \
         usr/lib/python3/dist-packages/tokenformer/libtokenformer.so.$major; do
  [ -e "$dest/$f" ] || die "make install did not install /$f"
done
for e in examples/*.c examples/train/; do
  b=$(basename "$e" .c)
  [ -x "$dest/usr/bin/tf-$b" ] || die "make install did not install /usr/bin/tf-$b"
done
[ "$(readlink -f "$pydir/libtokenformer.so.$major")" = "$(readlink -f "$dest/usr/lib/libtokenformer.so.$version")" ] \
  || die "the package's library link does not lead to the installed library: $(ls -l "$pydir/libtokenformer.so.$major")"
say "installed $(find "$dest" ! -type d | wc -l) files under DESTDIR"

# ---- 2. C and C++ programs through pkg-config ----------------------------------
export PKG_CONFIG_PATH=$dest/usr/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
# /usr/include and /usr/lib are system directories, which pkg-config drops;
# in a DESTDIR they must stay (then prefixed with the sysroot).
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
pkg-config --exists --print-errors tokenformer || die "pkg-config does not find tokenformer"
[ "$(pkg-config --modversion tokenformer)" = "$version" ] || die "pkg-config --modversion"
cflags=$(pkg-config --cflags tokenformer)
libs=$(pkg-config --libs tokenformer)
static_libs=$(pkg-config --static --libs tokenformer)
say "pkg-config --cflags: $cflags"
say "pkg-config --libs: $libs"
say "pkg-config --static --libs: $static_libs"
case " $cflags " in *" -I$dest/usr/include "*) ;; *) die "--cflags does not point into DESTDIR";; esac
case " $libs " in *" -L$dest/usr/lib "*) ;; *) die "--libs does not point into DESTDIR";; esac
case " $static_libs " in *" -lblis "*) ;; *) die "pkg-config --static --libs lacks -lblis";; esac

cat > "$work/prog.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <tokenformer.h>

int main(void)
{
    if (tf_version_number() != TF_VERSION_NUMBER) {
        fprintf(stderr, "header %s, library %s\n", TF_VERSION_STRING, tf_version_string());
        return 1;
    }
    tf_pattention_params pp = tf_pattention_default_params();
    pp.n = 8; pp.d_in = 4; pp.d_out = 3;
    tf_pattention *set = NULL;
    float X[2 * 4] = {1, 0, -1, 0.5f, 0.25f, 2, 0, -0.5f}, Y[2 * 3];
    if (tf_pattention_create(&pp, &set) || tf_pattention_forward(set, 2, X, Y)) {
        fprintf(stderr, "pattention: %s\n", tf_last_error());
        return 1;
    }
    tf_pattention_free(set);
    tf_model_params mp = tf_model_default_params();
    mp.num_layers = 1; mp.hidden_size = 16; mp.num_attention_heads = 2;
    mp.qkv_slot_num = 8; mp.proj_slot_num = 8; mp.ffn_slot_num = 16; mp.seq_length = 8;
    tf_model *m = NULL;
    int32_t tok[4] = {72, 101, 108, 108}, tgt[4] = {101, 108, 108, 111};
    float loss = 0.0f;
    if (tf_model_create(&mp, &m) || tf_model_forward(m, 1, 4, tok, tgt, NULL, &loss)) {
        fprintf(stderr, "model: %s\n", tf_last_error());
        return 1;
    }
    tf_model_free(m);
    if (!isfinite(loss) || !isfinite(Y[0]))
        return 1;
    printf("prog: libtokenformer %s, loss %.3f\n", tf_version_string(), loss);
    return 0;
}
EOF
cp tests/cpp_smoke.cpp "$work/"
cd "$work"
# shellcheck disable=SC2086  # pkg-config output is a list of flags
"$CC" -std=c11 -Wall -Wextra -Werror prog.c -o prog $cflags $libs -lm || die "building a C program"
# shellcheck disable=SC2086
"$CXX" -std=c++11 -Wall -Wextra -pedantic -Werror cpp_smoke.cpp -o cpp_smoke $cflags $libs \
  || die "building the C++ program"
static_flags=$(echo " $static_libs " | sed 's/ -ltokenformer / -l:libtokenformer.a /')
# shellcheck disable=SC2086
"$CC" -std=c11 prog.c -o prog_static $cflags $static_flags || die "linking libtokenformer.a"
for p in prog cpp_smoke; do
  # capture first: `ldd | grep -q` can SIGPIPE ldd and fail under pipefail
  deps=$(LD_LIBRARY_PATH=$dest/usr/lib ldd "./$p")
  grep -q "libtokenformer.so.$major => $dest/usr/lib/" <<<"$deps" \
    || die "$p does not load the DESTDIR's libtokenformer: $deps"
  LD_LIBRARY_PATH=$dest/usr/lib "./$p" || die "$p failed"
done
deps=$(ldd ./prog_static || true)
! grep -q libtokenformer <<<"$deps" || die "prog_static still needs libtokenformer.so"
./prog_static || die "prog_static failed"
for e in "$dest"/usr/bin/tf-*; do
  deps=$(LD_LIBRARY_PATH=$dest/usr/lib ldd "$e")
  ! grep -q "not found" <<<"$deps" || die "$e has unresolved libraries: $deps"
done
cd "$root"

# ---- 3. Python from the install location -----------------------------------------
(cd "$work" && env -u LD_LIBRARY_PATH PYTHONPATH="$dest/usr/lib/python3/dist-packages" \
   PYTHONDONTWRITEBYTECODE=1 DEST="$dest" "$PYTHON" - <<'EOF'
import os
import numpy as np
import tokenformer as tf
dest = os.environ["DEST"]
assert tf.__file__.startswith(dest), tf.__file__
assert os.path.realpath(tf.library_path).startswith(dest), tf.library_path
assert not tf.missing_symbols, tf.missing_symbols
with tf.Pattention(n=8, d_in=4, d_out=3) as s:
    y = s.forward(np.ones((2, 4), np.float32))
    assert y.shape == (2, 3) and np.isfinite(y).all()
with tf.Model(num_layers=1, hidden_size=16, num_attention_heads=2, qkv_slot_num=8,
              proj_slot_num=8, ffn_slot_num=16, seq_length=8) as m:
    r = m.forward(tf.bytes_to_tokens("Hell"), tf.bytes_to_tokens("ello"))
    assert r.logits.shape == (1, 4, 256) and np.isfinite(r.loss)
print("python: tokenformer %s from %s, library %s, loss %.3f"
      % (tf.__version__, os.path.dirname(tf.__file__), tf.library_path, r.loss))
EOF
) || die "the installed Python package does not work"

# ---- 4. uninstall --------------------------------------------------------------------
"$MAKE" --no-print-directory uninstall "${vars[@]}" > "$tmp/uninstall.log" 2>&1 \
  || { cat "$tmp/uninstall.log"; die "make uninstall failed"; }
left=$(find "$dest" ! -type d)
[ -z "$left" ] || die "make uninstall left files behind:
$left"
say "uninstall removed every file"
say "OK"
