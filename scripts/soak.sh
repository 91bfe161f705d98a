#!/usr/bin/env bash
# Soak: pomelo-server (the AddressSanitizer + UBSan build when there is one) under churn over
# an impaired link for minutes. pomelo-client --mode soak runs CLIENTS clients that connect,
# talk, disconnect or vanish (the server must time them out), and reconnect with fresh tokens,
# through its impairment stage (loss, duplication, reordering, delay each way; this kernel has
# no netem, and a memif link has no kernel in the path). Passes only if:
#   - the generator's verdict is OK: every client served, every session connected and ended
#     as its client chose, every echo byte-identical and none twice, echo loss within what the
#     impairment explains (pomelo-client --help, "exit status");
#   - the server ends up with no connection left, accepted exactly the sessions that
#     connected, and closed each one: the vanished ones (at least) by timing out;
#   - the server stops cleanly on SIGTERM: exit 0, no sanitizer report (leaks included);
#   - nothing is left under /var/run/dpdk.
#
#   scripts/soak.sh                 # 300 s, 200 clients, 5 % loss + 5 % dup + 5 % reorder, 1+-1 ms
#   scripts/soak.sh 20              # the short version (meson test soak-short, in scripts/test.sh)
#   CLIENTS=500 IMPAIR=loss=10%,delay=5ms SUITE=aesgcm scripts/soak.sh 600
#   BUILD=build scripts/soak.sh     # the optimised build instead of build-san (required otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-300}"
CLIENTS="${CLIENTS:-200}"
PAYLOADS="${PAYLOADS:-40}"   # per session
RATE="${RATE:-20}"           # payloads per second per client: sessions of ~2 s
TIMEOUT="${TIMEOUT:-2}"      # token timeout (s): a vanished client is timed out after it
SUITE="${SUITE:-chacha}"
IMPAIR="${IMPAIR:-loss=5%,dup=5%,reorder=5%,delay=1ms,jitter=1ms}"
# The soak's point is the server under AddressSanitizer: without BUILD, build-san or nothing.
if [ -z "${BUILD:-}" ]; then
  [ -x build-san/tools/pomelo-server ] || { echo "soak.sh: build-san is not built (scripts/test.sh builds it; BUILD=build runs the optimised build instead)" >&2; exit 2; }
  BUILD=build-san
fi
for t in pomelo-server pomelo-client pomelo-token pomelo-stats; do
  [ -x "$BUILD/tools/$t" ] || { echo "soak.sh: $BUILD/tools/$t is not built (scripts/test.sh builds it)" >&2; exit 2; }
done
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work=$(mktemp -d /tmp/pomelo-soak.XXXXXX)
srv_prefix="pomelo-soak-srv-$$"
cli_prefix="pomelo-soak-cli-$$"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work" "/var/run/dpdk/$srv_prefix" "/var/run/dpdk/$cli_prefix" 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "soak.sh: FAILED: $*"; status=1; }
status=0

"$BUILD/tools/pomelo-token" keygen -o "$work/server.key" >/dev/null
protocol_id=0x504f4d454c4f0002
sock="$work/memif.sock"
echo "== pomelo-server ($BUILD, 1 worker) over net_memif; $CLIENTS clients churning for ${SECONDS_TO_RUN}s over: $IMPAIR"
"$BUILD/tools/pomelo-server" --no-huge --no-pci -m 256 --log-level error --file-prefix "$srv_prefix" -l 0-1 \
  --vdev "net_memif0,role=server,socket=$sock,mac=02:00:00:00:00:01" -- --driver ethdev \
  --bind 198.18.0.1:40000 --protocol-id "$protocol_id" --key "$work/server.key" \
  --token-journal "$work/tokens" --max-clients 4096 --stats-interval 1 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  grep -q "pomelo-server: serving" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
stats() { "$BUILD/tools/pomelo-stats" --file-prefix "$srv_prefix" --json summary; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }
rss_start=$(rss)

gen_status=0
"$BUILD/tools/pomelo-client" --no-huge --no-pci -m 512 --log-level error --file-prefix "$cli_prefix" -l 0 \
  --vdev "net_memif0,role=client,socket=$sock,mac=02:00:00:00:00:02,rsize=12" -- --driver ethdev \
  --gateway-mac 02:00:00:00:00:01 --bind 198.18.1.1 --server 198.18.0.1:40000 --key "$work/server.key" \
  --protocol-id "$protocol_id" --suite "$SUITE" --mode soak --clients "$CLIENTS" --payloads "$PAYLOADS" \
  --rate "$RATE" --timeout "$TIMEOUT" --duration "$SECONDS_TO_RUN" --impair "$IMPAIR" \
  --json "$work/soak.json" || gen_status=$?
rss_end=$(rss)
[ "$gen_status" -eq 0 ] || fail "the generator's verdict (exit status $gen_status)"

# The last vanished clients are timed out TIMEOUT seconds after they went silent.
drained=0
for _ in $(seq $(( (TIMEOUT + 10) * 10 ))); do
  if stats >"$work/summary.json" 2>/dev/null && python3 - "$work/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
sys.exit(0 if s["peers_connected"] + s["peers_disconnecting"] + s["peers_unconfirmed"] == 0 else 1)
PY
  then drained=1; break; fi
  sleep 0.1
done
[ "$drained" -eq 1 ] || fail "the server still holds connections $((TIMEOUT + 10)) s after the generator ended"

python3 - "$work/soak.json" "$work/summary.json" "$rss_start" "$rss_end" <<'PY' || status=1
import json, sys
g = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))["summary"]
soak, imp = g["soak"], g.get("impairment", {})
closed = {k[len("closed_"):]: v for k, v in s.items() if k.startswith("closed_")}
rows = [
    ("sessions connected (generator)", soak["connected"]),
    ("  aborted while connecting at the end", g["clients"]["aborted"]),
    ("  ended by DISCONNECT", soak["disconnected"]),
    ("  vanished (left to time out)", soak["vanished"]),
    ("clients served", f'{soak["clients_served"]} of {g["clients"]["total"]}'),
    ("payloads sent / echoed", f'{g["payloads"]["sent"]} / {g["payloads"]["echoed"]}'),
    ("echoes mismatched / duplicated", f'{g["payloads"]["mismatched"]} / {g["payloads"]["duplicated"]}'),
    ("echo loss (expected)", f'{100 * g["payloads"]["lost"] / max(g["payloads"]["sent"], 1):.2f} % '
                             f'({100 * soak["expected_loss"]:.2f} %)'),
    ("echo RTT p50 / p99", f'{g["echo_rtt_ns"]["p50"] / 1e6:.2f} / {g["echo_rtt_ns"]["p99"] / 1e6:.2f} ms'),
    ("connections accepted (server)", s["connections_accepted"]),
    ("  closed by client / timed out", f'{closed["client_disconnected"]} / {closed["timed_out"]}'),
    ("server RSS start -> end", f'{int(sys.argv[3]) // 1024} -> {int(sys.argv[4]) // 1024} MiB'),
]
for d in ("tx", "rx"):
    if d in imp:
        x = imp[d]
        rows.append((f"impaired {'out' if d == 'tx' else 'in'}: seen/lost/dup/reordered",
                     f'{x["seen"]}/{x["lost"]}/{x["duplicated"]}/{x["reordered"]}'))
print("== soak")
for k, v in rows:
    print(f"{k:<42} {v}")
bad = []
# A session still connecting when the generator stopped may have been accepted by the server
# (and is then timed out): those are the only connections the generator did not see.
aborted = g["clients"]["aborted"]
if not soak["connected"] <= s["connections_accepted"] <= soak["connected"] + aborted:
    bad.append(f'the server accepted {s["connections_accepted"]} connections, the generator connected '
               f'{soak["connected"]} sessions (and aborted {aborted} while connecting)')
if closed["client_disconnected"] + closed["timed_out"] != s["connections_accepted"]:
    bad.append("connections closed by client and by timeout do not add up to those accepted")
if closed["timed_out"] < soak["vanished"]:
    bad.append(f'{soak["vanished"]} clients vanished but only {closed["timed_out"]} connections timed out')
if soak["connected"] == 0 or soak["vanished"] == 0:
    bad.append("no churn: no session connected or none vanished")
for b in bad:
    print("soak.sh: FAILED:", b)
sys.exit(1 if bad else 0)
PY

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
[ "$server_status" -eq 0 ] || fail "the server exited with status $server_status on SIGTERM"
if grep -qE "AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$work/server.log"; then
  grep -E -A20 "AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:" "$work/server.log" | head -60
  fail "a sanitizer report in the server's log"
fi
for p in "$srv_prefix" "$cli_prefix"; do
  [ ! -e "/var/run/dpdk/$p" ] || fail "/var/run/dpdk/$p left behind"
done
if [ "$status" -eq 0 ]; then echo "soak: PASSED"; else tail -n 5 "$work/server.log"; echo "soak: FAILED"; fi
exit $status
