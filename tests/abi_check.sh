#!/usr/bin/env bash
# abi_check.sh -- the shared library's ABI against the committed baseline.
#
#   tests/abi_check.sh [LIB]            (default: build/libtokenformer.so.X.Y.Z)
#   tests/abi_check.sh --update [LIB]   rewrite abi/ from LIB (make abi-baseline)
#
# 1. The exported function symbols (nm -D --defined-only, version tag
#    stripped, sorted) must equal abi/symbols.txt; the diff is printed.
# 2. Every exported symbol (functions, data, anything but the version node)
#    starts with tf_.
# 3. Every function the public header declares (TF_API ... tf_x(...)) is
#    exported, and nothing else is.
# 4. abidiff of abi/libtokenformer.abi (the baseline) against the library's
#    ABI now, both written by abidw with --headers-dir include
#    --drop-private-types (only the public API counts; the opaque handles'
#    internals are free to change).  abidiff's exit status is a bit set:
#    1 error, 2 usage error, 4 ABI change, 8 incompatible change.  Fails on
#    1, 2 or 8; on 4 alone the report is printed and, because abidiff
#    flags only removed symbols with 8, the report is also searched for
#    changes that break programs built against the baseline (a data member
#    moved or deleted, an enumerator's value changed or deleted, a type
#    replaced, a parameter added or removed): those fail too.  Additions
#    (new functions, members appended, new enumerators) pass with a report.
#
# After a deliberate change: `make abi-baseline` rewrites both files (and
# say why in CHANGELOG.md).  Needs nm (binutils) and abidw/abidiff (Debian
# package abigail-tools; tools/install-deps installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
hdr=include/tokenformer.h
ver() { sed -n "s/^#define TF_VERSION_$1 \([0-9]*\).*/\1/p" "$hdr"; }
lib=${1:-build/libtokenformer.so.$(ver MAJOR).$(ver MINOR).$(ver PATCH)}
symbols=abi/symbols.txt
baseline=abi/libtokenformer.abi
[ -f "$lib" ] || { echo "abi_check: $lib not found (run make first)" >&2; exit 2; }
for tool in nm readelf abidw abidiff; do
  command -v "$tool" >/dev/null || {
    echo "abi_check: $tool not found (Debian: binutils, abigail-tools; see tools/install-deps)" >&2
    exit 2; }
done
# Without DWARF, abidw sees only symbols and abidiff would call any type
# change "identical": refuse instead of passing silently.
if ! readelf -S "$lib" | grep -c '\.debug_info' > /dev/null; then
  echo "abi_check: $lib has no debug information: build it with -g (the default CFLAGS)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

export_list() { nm -D --defined-only "$1" | awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' | LC_ALL=C sort -u; }
abi_xml() {
  abidw --headers-dir include --drop-private-types --no-corpus-path --no-comp-dir-path \
        --short-locs --type-id-style hash --out-file "$2" "$1"
}

if [ "$update" -eq 1 ]; then
  mkdir -p abi
  export_list "$lib" > "$symbols"
  abi_xml "$lib" "$baseline"
  echo "abi_check: wrote $symbols ($(wc -l < "$symbols") functions) and $baseline from $lib"
  exit 0
fi
for f in "$symbols" "$baseline"; do
  [ -f "$f" ] || { echo "abi_check: $f missing: run 'make abi-baseline'" >&2; exit 2; }
done

# 1. exported functions vs the committed list
export_list "$lib" > "$tmp/symbols.txt"
if ! diff -u --label "$symbols (committed)" --label "$lib (built)" "$symbols" "$tmp/symbols.txt" \
     > "$tmp/symbols.diff"; then
  echo "abi_check: FAIL: the exported functions differ from $symbols:"
  cat "$tmp/symbols.diff"
  fail=1
else
  echo "abi_check: $(wc -l < "$symbols") exported functions match $symbols"
fi

# 2. every exported symbol has the tf_ prefix
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $2, $3 }' \
  | grep -v ' tf_' > "$tmp/foreign.txt" || true
if [ -s "$tmp/foreign.txt" ]; then
  echo "abi_check: FAIL: exported symbols without the tf_ prefix (type name):"
  cat "$tmp/foreign.txt"
  fail=1
fi

# 3. header declarations vs exports
grep -oP '^TF_API\s[^;(]*?\b\Ktf_\w+(?=\s*\()' "$hdr" | LC_ALL=C sort -u > "$tmp/declared.txt"
if ! diff -u --label "declared in $hdr" --label "exported by $lib" "$tmp/declared.txt" \
     "$tmp/symbols.txt" > "$tmp/decl.diff"; then
  echo "abi_check: FAIL: the header's functions and the exported ones differ"
  echo "  (- declared but not exported: a program using it fails to link;"
  echo "   + exported but not declared: not API, yet part of the ABI):"
  cat "$tmp/decl.diff"
  fail=1
fi

# 4. abidiff against the baseline
abi_xml "$lib" "$tmp/current.abi"
set +e
abidiff "$baseline" "$tmp/current.abi" > "$tmp/abidiff.txt" 2>&1
rc=$?
set -e
if [ $((rc & 3)) -ne 0 ]; then
  echo "abi_check: FAIL: abidiff could not compare (exit $rc):"
  cat "$tmp/abidiff.txt"
  fail=1
elif [ $((rc & 8)) -ne 0 ]; then
  echo "abi_check: FAIL: incompatible ABI change against $baseline (abidiff exit $rc):"
  cat "$tmp/abidiff.txt"
  fail=1
elif [ $((rc & 4)) -ne 0 ]; then
  breaking='offset changed|data members? deletion|enumerators? (change|deletion)|type name changed|typedef name changed|return type changed|parameter [0-9]+ of type .* was (added|removed)|name of .* changed'
  if grep -Eq "$breaking" "$tmp/abidiff.txt"; then
    echo "abi_check: FAIL: ABI change against $baseline that breaks existing programs:"
    grep -En "$breaking" "$tmp/abidiff.txt" | sed 's/^/  /'
    echo "abidiff report (exit $rc):"
    cat "$tmp/abidiff.txt"
    fail=1
  else
    echo "abi_check: compatible ABI change against $baseline (abidiff exit $rc), reported only:"
    cat "$tmp/abidiff.txt"
    echo "abi_check: if deliberate, record it with 'make abi-baseline'"
  fi
else
  echo "abi_check: ABI identical to $baseline"
fi

if [ "$fail" -ne 0 ]; then
  echo "abi_check: FAILED (a deliberate change? 'make abi-baseline' updates abi/, then say so in CHANGELOG.md)"
  exit 1
fi
echo "abi_check: OK"
