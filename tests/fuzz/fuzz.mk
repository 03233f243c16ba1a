# fuzz.mk -- libFuzzer targets (clang), included by the Makefile.
#   make fuzz FUZZ_SECONDS=600   every target for that long, one after another
#   make fuzz-smoke              every target for FUZZ_SMOKE_SECONDS (make check)
# The library is rebuilt with clang under ASan + UBSan into build/fuzz/; new
# inputs go to build/fuzz/corpus-<target>/ (the committed seeds under
# tests/fuzz/corpus/ are only read); a crash is written to build/fuzz/ as
# crash-<hash> and fails the run.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(LIB_CFLAGS) -Wno-pass-failed -DTF_FUZZ_ROOT=\"$(CURDIR)\"
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJ := $(LIB_SRC:%.c=$(B)/fuzz/%.o)
.SECONDARY: $(FUZZ_OBJ)

$(B)/fuzz/%.o: %.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(DEP_LIBS)

FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz: deps $(FUZZ_TARGETS)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(B)/fuzz $(FUZZ_NAMES)

fuzz-smoke: deps $(FUZZ_TARGETS)
	tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(B)/fuzz $(FUZZ_NAMES)
.PHONY: fuzz fuzz-smoke
