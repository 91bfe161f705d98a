#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each (default 10):
#   1. configures build-san/ (clang, ASan+UBSan, -Dfuzz=true) if it is absent,
#   2. builds the targets and the seed generator (ninja -C build-san -j2 fuzz),
#   3. writes the seed corpora from the reference vectors into build-san/corpus/<target>/,
#   4. runs each build-san/tests/fuzz/fuzz_* over its corpus, artifacts into
#      build-san/artifacts/<target>/, logs into build-san/fuzz-logs/<target>.log,
# then prints a table and, as the very last line, "fuzz: N passed, M failed".
# Exits non-zero if any target crashed (or could not run).
#
#   scripts/fuzz.sh [SECONDS]        e.g. scripts/fuzz.sh 60
#   FUZZ_TARGETS="fuzz_packet fuzz_request" scripts/fuzz.sh 30   (subset)
#
# fuzz_server and fuzz_client run programs of datagrams against the state machines and check
# invariants by name (tests/fuzz/README.md). POMELO_FUZZ_TOLERATE="name,name" turns the named
# invariants into a count instead of a crash (to explore past a known finding); unset, every
# invariant is fatal. POMELO_FUZZ_TRACE=1 with one input prints the program step by step.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-10}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: $0 [SECONDS]   (a positive integer, default 10)" >&2
  echo "fuzz: 0 passed, 1 failed"
  exit 2
fi

BUILD="${FUZZ_BUILD:-build-san}"  # shared with the sanitizer test run of scripts/test.sh
fatal() { echo "fuzz.sh: $*" >&2; echo "fuzz: 0 passed, 1 failed"; exit 1; }

if [ ! -f "$BUILD/build.ninja" ]; then
  echo "== configuring $BUILD (clang, ASan+UBSan, libFuzzer)"
  CXX=clang++ CC=clang meson setup "$BUILD" -Dfuzz=true -Dbenchmarks=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fno-sanitize-recover=all \
    || fatal "meson setup $BUILD failed"
fi

echo "== building fuzz targets"
ninja -C "$BUILD" -j2 fuzz || fatal "build failed (is $BUILD configured with -Dfuzz=true?)"

echo "== seed corpora"
ninja -C "$BUILD" fuzz-corpus || fatal "seed corpus generation failed"

shopt -s nullglob
targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in $FUZZ_TARGETS; do targets+=("$BUILD/tests/fuzz/$t"); done
else
  for exe in "$BUILD"/tests/fuzz/fuzz_*; do
    [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
  done
fi
[ ${#targets[@]} -gt 0 ] || fatal "no fuzz_* executables in $BUILD/tests/fuzz"

# UBSan findings are fatal even if the build recovers from them; leaks count as findings.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

mkdir -p "$BUILD/fuzz-logs"
rows=()
passed=0
failed=0
echo "== fuzzing ${#targets[@]} targets, ${SECONDS_PER_TARGET}s each"
for exe in "${targets[@]}"; do
  name=$(basename "$exe")
  corpus="$BUILD/corpus/$name"
  artifacts="$BUILD/artifacts/$name"
  log="$BUILD/fuzz-logs/$name.log"
  mkdir -p "$corpus" "$artifacts"
  echo "-- $name"
  rc=0
  if [ ! -x "$exe" ]; then
    echo "missing executable $exe" >"$log"
    rc=127
  else
    "$exe" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
  fi

  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  cov0=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$log" | tail -n1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n1)
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -n1)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)

  if [ "$rc" -eq 0 ]; then
    result="ok"
    passed=$((passed + 1))
  else
    result="CRASH rc=$rc ${artifact:-(no artifact; see $log)}"
    failed=$((failed + 1))
    echo "   $name failed (exit $rc); last lines of $log:"
    grep -E 'ERROR|INVARIANT|^ +at |runtime error|SUMMARY|#[0-9]+ 0x' "$log" | head -n 25 | sed 's/^/   | /' || true
    [ -n "$artifact" ] && echo "   reproduce: $exe $artifact"
  fi
  rows+=("$(printf '%-22s %12s %9s %15s %8s  %s' "$name" "${execs:--}" "${rate:--}" \
    "${cov0:--}->${cov:--}" "${corp:--}" "$result")")
done

echo
printf '%-22s %12s %9s %15s %8s  %s\n' "target" "executions" "exec/s" "cov(seed->end)" "corpus" "result"
printf '%s\n' "${rows[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
