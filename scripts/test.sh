#!/usr/bin/env bash
# Builds and runs everything that proves the project works:
#   1. the GoogleTest suites in build/ (g++, optimised),
#   2. the same suites in build-san/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer),
#   3. every libFuzzer target for FUZZ_SECONDS each (default 10),
#   4. DPDK's runtime directory (/var/run/dpdk) holds nothing new afterwards.
# The last line is "N passed, N failed", counted from this run's results only: each suite's
# reports are deleted before it runs; a test case counts from the gtest XML its binary wrote
# in this run, and a binary that crashed, aborted, timed out or exited non-zero with no
# failing case in its XML counts as one more failure.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

# DPDK's runtime base for this user (as eal_create_runtime_dir in DPDK 22.11).
if [ "$(id -u)" -eq 0 ]; then dpdk_runtime=/var/run/dpdk; else dpdk_runtime="${XDG_RUNTIME_DIR:-/tmp}/dpdk"; fi
dpdk_before=$(mktemp)
ls -A "$dpdk_runtime" 2>/dev/null | sort >"$dpdk_before"

# Deletes a build directory's test reports, so that only this run's can be counted.
clean_reports() {
  python3 - "$1" <<'PY'
import json, os, sys
build = sys.argv[1]
for t in json.load(open(os.path.join(build, "meson-info", "intro-tests.json"))):
    if t["protocol"] == "gtest":
        xml = os.path.join(t.get("workdir") or build, t["name"] + ".xml")
        if os.path.exists(xml):
            os.remove(xml)
logs = os.path.join(build, "meson-logs")
for name in os.listdir(logs) if os.path.isdir(logs) else []:
    if name.startswith("testlog"):
        os.remove(os.path.join(logs, name))
PY
}

status=0
echo "== tests (build/)"
clean_reports build
meson test -C build --print-errorlogs --num-processes 1 || status=1

echo "== tests under ASan+UBSan (build-san/)"
if [ ! -f build-san/build.ninja ]; then
  CXX=clang++ CC=clang meson setup build-san -Dfuzz=true -Dbenchmarks=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fno-sanitize-recover=all \
    || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C build-san || { echo "0 passed, 1 failed"; exit 1; }
clean_reports build-san
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-san --print-errorlogs --num-processes 1 || status=1

echo "== fuzz targets (${FUZZ_SECONDS}s each)"
fuzz_log=$(mktemp)
scripts/fuzz.sh "$FUZZ_SECONDS" | tee "$fuzz_log" || status=1

echo "== DPDK runtime directory ($dpdk_runtime)"
dpdk_after=$(mktemp)
ls -A "$dpdk_runtime" 2>/dev/null | sort >"$dpdk_after"

python3 - "$fuzz_log" "$dpdk_runtime" "$dpdk_before" "$dpdk_after" build build-san <<'PY'
import fcntl, json, os, re, struct, sys, xml.etree.ElementTree as ET
fuzz_log, dpdk_runtime, dpdk_before, dpdk_after, *builds = sys.argv[1:]
passed = failed = 0

def count_build(build):
    """This run's results of one build directory: (passed, failed)."""
    p = f = 0
    log = os.path.join(build, "meson-logs", "testlog.json")
    try:
        runs = [json.loads(line) for line in open(log) if line.strip()]
    except (OSError, ValueError) as e:
        print(f"test.sh: no test log {log} from this run: {e}")
        return 0, 1
    tests = {t["name"]: t for t in json.load(open(os.path.join(build, "meson-info", "intro-tests.json")))}
    ran = {r["name"] for r in runs}
    for name in sorted(set(tests) - ran):
        print(f"test.sh: {build}: test '{name}' did not run")
        f += 1
    for r in runs:
        t = tests.get(r["name"], {})
        ok = r["result"] == "OK"
        if t.get("protocol") != "gtest":
            p, f = (p + 1, f) if ok else (p, f + 1)
            continue
        xml = os.path.join(t.get("workdir") or build, r["name"] + ".xml")
        case_failures = 0
        try:
            root = ET.parse(xml).getroot()  # deleted before the run: this run's, or absent
            for case in root.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    case_failures += 1
                elif case.find("skipped") is None and case.get("result", "completed") == "completed" \
                        and case.get("status", "run") == "run":
                    p += 1
        except (OSError, ET.ParseError):
            print(f"test.sh: {build}: '{r['name']}' wrote no report (result {r['result']}, "
                  f"exit status {r.get('returncode')})")
            f += 1
            continue
        f += case_failures
        if not ok and case_failures == 0:
            # e.g. a leak found at exit, or a crash after the last case
            print(f"test.sh: {build}: '{r['name']}' ended {r['result']} (exit status {r.get('returncode')}) "
                  f"with no failing case in its report")
            f += 1
    return p, f

for build in builds:
    p, f = count_build(build)
    passed += p
    failed += f

m = None
for line in open(fuzz_log):
    m = re.match(r"fuzz: (\d+) passed, (\d+) failed", line.strip()) or m
if m:
    passed += int(m.group(1)); failed += int(m.group(2))
else:
    print("test.sh: fuzz.sh printed no result line"); failed += 1

# DPDK runtime directories: nothing may be left behind. A new entry whose config a live
# process locks belongs to a process running now (on a shared host, someone else's).
def live(name):
    try:
        fd = os.open(os.path.join(dpdk_runtime, name, "config"), os.O_RDONLY)
    except OSError:
        return False
    try:
        lock = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        return struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, lock))[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)

before = set(open(dpdk_before).read().split())
after = set(open(dpdk_after).read().split())
left = sorted(n for n in after - before if not live(n))
running = sorted(n for n in after - before if n not in left)
if running:
    print(f"test.sh: {dpdk_runtime}: in use by running processes (not counted): {' '.join(running)}")
if before - after:
    print(f"test.sh: {dpdk_runtime}: stale before the run, swept since: {' '.join(sorted(before - after))}")
if left:
    print(f"test.sh: {dpdk_runtime}: left behind by this run: {' '.join(left)}")
    failed += 1
else:
    passed += 1

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
rc=$?
rm -f "$fuzz_log" "$dpdk_before" "$dpdk_after"
[ $status -eq 0 ] && exit $rc
exit 1
