#!/usr/bin/env bash
# Builds and runs everything that proves the project works:
#   1. the GoogleTest suites in build/ (g++, optimised),
#   2. the same suites in build-san/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer),
#   3. every libFuzzer target for FUZZ_SECONDS each (default 10).
# The last line is "N passed, N failed", counted from the gtest XML reports and the fuzz runs.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

status=0
echo "== tests (build/)"
meson test -C build --print-errorlogs --num-processes 1 || status=1

echo "== tests under ASan+UBSan (build-san/)"
if [ ! -f build-san/build.ninja ]; then
  CXX=clang++ CC=clang meson setup build-san -Dfuzz=true -Dbenchmarks=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fno-sanitize-recover=all \
    || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C build-san || { echo "0 passed, 1 failed"; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-san --print-errorlogs --num-processes 1 || status=1

echo "== fuzz targets (${FUZZ_SECONDS}s each)"
fuzz_log=$(mktemp)
scripts/fuzz.sh "$FUZZ_SECONDS" | tee "$fuzz_log" || status=1

python3 - "$fuzz_log" build/meson-logs/testlog.junit.xml build-san/meson-logs/testlog.junit.xml <<'PY'
import re, sys, xml.etree.ElementTree as ET
fuzz_log, *reports = sys.argv[1:]
passed = failed = 0
for path in reports:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"test.sh: no test report {path}: {e}")
        failed += 1
        continue
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
m = None
for line in open(fuzz_log):
    m = re.match(r"fuzz: (\d+) passed, (\d+) failed", line.strip()) or m
if m:
    passed += int(m.group(1)); failed += int(m.group(2))
else:
    print("test.sh: fuzz.sh printed no result line"); failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
rc=$?
rm -f "$fuzz_log"
[ $status -eq 0 ] && exit $rc
exit 1
