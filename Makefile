# libtokenformer -- build, test, install.
#   make                 shared + static library, examples, tools
#   make check           unit tests (Check), conformance on tests/data, ...
#   make conformance FIXTURES=dir
#   make install PREFIX=/usr/local DESTDIR=
#   make bench

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
BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -fopenmp $(WARN)
LIB_CFLAGS := $(BASE_CFLAGS) -fno-math-errno -fPIC -fvisibility=hidden -DTF_BUILDING_LIBRARY -Iinclude -Ilib
DEP_LIBS := -lblis -lyaml -ljson-c -lm -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

B := build
SONAME := libtokenformer.so.$(V_MAJOR)
SHARED := $(B)/libtokenformer.so.$(VERSION)
STATIC := $(B)/libtokenformer.a

LIB_SRC := $(sort $(wildcard lib/*.c lib/kernels/*.c lib/io/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
LIB_HDR := $(HDR) $(wildcard lib/*.h lib/kernels/*.h lib/io/*.h)

TEST_SRC := $(sort $(wildcard tests/*.c))
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
TOOLS := $(B)/tools/tf-conformance
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

FIXTURES ?= tests/data

.PHONY: all lib check test conformance install uninstall bench clean
all: lib $(EXAMPLES) $(TOOLS)
lib: $(SHARED) $(STATIC) $(B)/libtokenformer.so $(B)/tokenformer.pc

$(B)/%.o: %.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(SHARED): $(LIB_OBJ) lib/libtokenformer.map
	$(CC) $(CFLAGS) -shared -fopenmp -Wl,-soname,$(SONAME) \
	  -Wl,--version-script=lib/libtokenformer.map -Wl,--no-undefined \
	  -o $@ $(LIB_OBJ) $(DEP_LIBS)
	ln -sf libtokenformer.so.$(VERSION) $(B)/$(SONAME)

$(B)/libtokenformer.so: $(SHARED)
	ln -sf libtokenformer.so.$(VERSION) $@

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(B)/tokenformer.pc: tokenformer.pc.in $(HDR)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# Programs use only the public header and link the shared library.
PROG_CFLAGS := $(BASE_CFLAGS) -Iinclude
PROG_LINK := -L$(B) -ltokenformer -Wl,-rpath,'$$ORIGIN/..' -lm

$(B)/examples/%: examples/%.c $(SHARED) $(B)/libtokenformer.so $(wildcard examples/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PROG_CFLAGS) -Iexamples $< -o $@ $(PROG_LINK)

$(B)/tools/tf-conformance: tools/conformance.c $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS)

$(B)/bench/%: bench/%.c $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O3 $(LIB_CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS)

# Unit tests link the static library so that they can reach internals.
$(B)/tests/check_tokenformer: $(TEST_SRC) tests/suites.def $(STATIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -Itests $(TEST_SRC) -o $@ $(STATIC) $(CHECK_LIBS) $(DEP_LIBS)

test: $(B)/tests/check_tokenformer
	$(B)/tests/check_tokenformer

conformance: $(TOOLS)
	$(B)/tools/tf-conformance $(FIXTURES)

check: all $(B)/tests/check_tokenformer
	$(B)/tools/tf-conformance tests/data
	$(B)/tests/check_tokenformer

bench: $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

install: lib $(EXAMPLES)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(HDR) $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libtokenformer.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libtokenformer.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtokenformer.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(B)/tokenformer.pc $(DESTDIR)$(PKGCONFIGDIR)/
	for e in $(EXAMPLES); do install -m 755 $$e $(DESTDIR)$(BINDIR)/tf-$$(basename $$e); done

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/tokenformer.h $(DESTDIR)$(LIBDIR)/libtokenformer.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtokenformer.so \
	  $(DESTDIR)$(LIBDIR)/libtokenformer.a $(DESTDIR)$(PKGCONFIGDIR)/tokenformer.pc
	for e in $(EXAMPLES); do rm -f $(DESTDIR)$(BINDIR)/tf-$$(basename $$e); done

clean:
	rm -rf $(B)

# Debian packages for building, testing and the demo (sudo when not root).
deps:
	tools/install-deps
.PHONY: deps
