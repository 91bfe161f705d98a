#!/usr/bin/env bash
# Where the time goes, two ways:
#   1. perf record -e cpu-clock -g (no PMU on VMs) on a pomelo-server under load: the top
#      symbols of each thread (the worker lcores, rte-worker-N, and the control thread), and
#      folded stacks (one line per stack, for flamegraph.pl or speedscope) in $OUT/*.folded.
#      With --pid PID it attaches to a server already running (under your own load);
#      otherwise it starts one on net_memif and loads it with the generator's blast at RATE.
#   2. valgrind --tool=callgrind on the bench_server harness (not the busy-polling daemon):
#      instructions per packet of Shard::receive_burst and of the send pass (Shard::send +
#      BatchOutbox::flush), per backend and suite: the noise-free figure for regressions.
#
#   perf/profile.sh                      # 5 s at 1 Mpps chacha 64 B, then callgrind
#   RATE=1500000 SUITE=aesgcm SIZE=256 perf/profile.sh
#   perf/profile.sh --pid 1234 [SECONDS] # attach only (no callgrind)
#   CALLGRIND=0 perf/profile.sh          # skip callgrind
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RECORD=5
PID=""
if [ "${1:-}" = --pid ]; then PID="${2:?--pid needs a process id}"; SECONDS_TO_RECORD="${3:-5}"; fi
RATE="${RATE:-1000000}"
SUITE="${SUITE:-chacha}"
SIZE="${SIZE:-64}"
OUT="${OUT:-build/profile}"
mkdir -p "$OUT"
scripts/setup.sh >/dev/null
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d /tmp/pomelo-profile.XXXXXX)
srv_prefix="pomelo-prof-srv-$$"; cli_prefix="pomelo-prof-cli-$$"
server_pid=""; gen_pid=""
cleanup() {
  [ -n "$gen_pid" ] && kill -INT "$gen_pid" 2>/dev/null && wait "$gen_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work" "/var/run/dpdk/$srv_prefix" "/var/run/dpdk/$cli_prefix"
}
trap cleanup EXIT

if [ -z "$PID" ]; then
  build/tools/pomelo-token keygen -o "$work/key" >/dev/null
  build/tools/pomelo-server --no-huge --no-pci -m 256 --log-level error --file-prefix "$srv_prefix" -l 0-1 \
    --vdev "net_memif0,role=server,socket=$work/sock,mac=02:00:00:00:00:01" -- --driver ethdev \
    --bind 198.18.0.1:40000 --protocol-id 0x1 --key "$work/key" --token-journal "$work/tokens" \
    --stats-interval 0 >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q serving "$work/server.log" && break; sleep 0.1; done
  build/tools/pomelo-client --no-huge --no-pci -m 1024 --log-level error --file-prefix "$cli_prefix" -l 0 \
    --vdev "net_memif0,role=client,socket=$work/sock,mac=02:00:00:00:00:02,rsize=12" -- --driver ethdev \
    --gateway-mac 02:00:00:00:00:01 --bind 198.18.1.1 --server 198.18.0.1:40000 --key "$work/key" \
    --protocol-id 0x1 --clients 100 --suite "$SUITE" --size "$SIZE" --mode blast --blast-rate "$RATE" \
    --trial $((SECONDS_TO_RECORD + 6)) --quiet >"$work/gen.log" 2>&1 &
  gen_pid=$!
  # Connect, seal the trial's payloads, then record inside the trial.
  sleep $(( (RATE * (SECONDS_TO_RECORD + 6)) / 4000000 + 4 ))
  PID=$server_pid
fi

echo "== perf record -e cpu-clock -g, pid $PID, ${SECONDS_TO_RECORD} s${RATE:+ (blast $RATE/s $SUITE ${SIZE} B)}"
perf record -e cpu-clock -g -p "$PID" -o "$work/perf.data" -- sleep "$SECONDS_TO_RECORD" >/dev/null 2>&1
perf script -i "$work/perf.data" 2>/dev/null >"$work/perf.txt"
python3 - "$work/perf.txt" "$OUT" <<'PY'
import collections, os, sys
text, out = sys.argv[1], sys.argv[2]
stacks = collections.Counter()          # (thread, folded stack) -> samples
top = collections.defaultdict(collections.Counter)  # thread -> leaf symbol -> samples
thread, frames = None, []
def flush():
    if thread is None: return
    leaf = frames[0] if frames else "?"
    top[thread][leaf] += 1
    stacks[(thread, ";".join(reversed(frames)))] += 1
for line in open(text, errors="replace"):
    if not line.strip():
        flush(); thread, frames = None, []
        continue
    if not line.startswith((" ", "\t")):
        flush(); thread, frames = line.split()[0], []
        continue
    parts = line.strip().split(None, 1)
    sym = parts[1].rsplit(" (", 1)[0] if len(parts) > 1 else "?"
    frames.append(sym.split("+0x")[0])
flush()
for t, c in sorted(top.items(), key=lambda kv: -sum(kv[1].values())):
    total = sum(c.values())
    print(f"\n-- thread {t}: {total} samples")
    for sym, n in c.most_common(15):
        print(f"  {100 * n / total:5.1f} %  {sym[:110]}")
for t in top:
    path = os.path.join(out, f"{t}.folded")
    with open(path, "w") as f:
        for (th, st), n in stacks.items():
            if th == t: f.write(f"{st} {n}\n")
print(f"\nfolded stacks: {out}/<thread>.folded (flamegraph.pl or speedscope)")
PY
[ -n "$gen_pid" ] && { kill -INT "$gen_pid" 2>/dev/null; wait "$gen_pid" 2>/dev/null || true; gen_pid=""; }

if [ "${CALLGRIND:-1}" = 1 ] && [ -z "${2:-}" ]; then
  command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }
  ninja -C build perf/bench_server >/dev/null
  echo
  echo "== callgrind: instructions per packet (bench_server, bursts of 32 x 64 B)"
  printf "%-18s %14s %14s\n" "backend / suite" "receive Ir/pkt" "send Ir/pkt"
  for key in ipsecmb_chacha ipsecmb_aesgcm sodium_chacha; do
    row="$key"
    for pass in "ServerReceive:pomelo::server::Shard::receive_burst*" "ServerSend:pomelo::server::Shard::send*"; do
      bm=${pass%%:*}; fn=${pass#*:}
      toggles=(--toggle-collect="$fn")
      [ "$bm" = ServerSend ] && toggles+=(--toggle-collect='pomelo::BatchOutbox::flush*')
      valgrind --tool=callgrind --collect-atstart=no "${toggles[@]}" --callgrind-out-file="$work/cg.out" \
        build/perf/bench_server --benchmark_filter="BM_$bm/$key\$" --benchmark_min_time=0.01 \
        --benchmark_format=json >"$work/bm.json" 2>/dev/null
      ir=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
      iters=$(python3 -c 'import json,sys; b=[x for x in json.load(open(sys.argv[1]))["benchmarks"]]; print(b[0]["iterations"])' "$work/bm.json")
      row="$row $(python3 -c "print(f'{$ir / ($iters * 32):.0f}')")"
    done
    printf "%-18s %14s %14s\n" $row
  done
fi
