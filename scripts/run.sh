#!/usr/bin/env bash
# The main job: pomelo-server and the load generator (pomelo-client) as two processes joined
# by net_memif (shared memory: the stand-in for a NIC on a host without one). The generator
# mints its own connect tokens and connects CLIENTS clients; then, by MODE:
#   blast (default)  finds the server's capacity: the highest offered rate of pre-sealed
#                    payloads echoed with no loss (RFC 2544 search), one echo in 64 decrypted
#                    and checked byte for byte, and the generator's own send rate beside it;
#   echo             PAYLOADS payloads per client, every echo checked byte for byte.
# Then it prints the server's own counters (DPDK telemetry, via pomelo-stats) and which side
# was the bottleneck: the server worker's busy share (sampled every second during the run)
# against the generator's ability to offer more.
#
#   scripts/run.sh                      # capacity of 1 worker, 100 clients, 64-byte payloads
#   SUITE=aesgcm SIZE=1200 scripts/run.sh
#   MODE=echo CLIENTS=1000 PAYLOADS=100 scripts/run.sh
#   DRIVER=socket scripts/run.sh        # kernel UDP on 127.0.0.1 instead of memif
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${CLIENTS:-100}"
PAYLOADS="${PAYLOADS:-1000}"
SIZE="${SIZE:-64}"
DRIVER="${DRIVER:-memif}"
MODE="${MODE:-blast}"
SUITE="${SUITE:-chacha}"
case "$MODE" in blast|echo) ;; *) echo "run.sh: MODE=$MODE is not blast or echo" >&2; exit 2 ;; esac

scripts/setup.sh >/dev/null
work=$(mktemp -d /tmp/pomelo-run.XXXXXX)
srv_prefix="pomelo-run-srv-$$"
cli_prefix="pomelo-run-cli-$$"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work" "/var/run/dpdk/$srv_prefix" "/var/run/dpdk/$cli_prefix" 2>/dev/null || true
}
trap cleanup EXIT

build/tools/pomelo-token keygen -o "$work/server.key"
protocol_id=0x504f4d454c4f0001
eal=(--no-huge --no-pci -m 256 --log-level error)

if [ "$DRIVER" = memif ]; then
  server_addr=198.18.0.1:40000
  sock="$work/memif.sock"
  server_eal=("${eal[@]}" --file-prefix "$srv_prefix" -l 0-1
              --vdev "net_memif0,role=server,socket=$sock,mac=02:00:00:00:00:01")
  server_opts=(--driver ethdev)
  client_eal=(--no-huge --no-pci -m 512 --log-level error --file-prefix "$cli_prefix" -l 0
              --vdev "net_memif0,role=client,socket=$sock,mac=02:00:00:00:00:02,rsize=12")
  client_opts=(--driver ethdev --gateway-mac 02:00:00:00:00:01 --bind 198.18.1.1)
else
  server_addr=127.0.0.1:40000
  server_eal=("${eal[@]}" --file-prefix "$srv_prefix" -l 0-1)
  server_opts=(--driver socket)
  client_eal=("${eal[@]}" --file-prefix "$cli_prefix" -l 0)
  client_opts=(--driver socket)
fi

echo "== pomelo-server ($DRIVER, 1 worker lcore) on $server_addr"
build/tools/pomelo-server "${server_eal[@]}" -- "${server_opts[@]}" --bind "$server_addr" \
  --protocol-id "$protocol_id" --key "$work/server.key" --token-journal "$work/tokens" \
  --stats-interval 1 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "pomelo-server: serving" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
head -n 1 <(grep "pomelo-server: serving" "$work/server.log")

gen() { build/tools/pomelo-client "${client_eal[@]}" -- "${client_opts[@]}" --server "$server_addr" \
          --key "$work/server.key" --protocol-id "$protocol_id" --clients "$CLIENTS" --size "$SIZE" --suite "$SUITE" "$@"; }
echo
status=0
if [ "$MODE" = blast ]; then
  echo "== pomelo-client --mode blast: $CLIENTS clients, $SIZE-byte payloads, $SUITE (capacity search)"
  gen --mode blast --json "$work/result.json" || status=$?
  # Which side limits: load the server at 1.25x its capacity for 3 s and read its worker's
  # busy share (telemetry) meanwhile. (Not during the search: a zero-loss search is upset by
  # anything else running on these two CPUs, a telemetry client included.)
  over=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["blast"]["capacity_pps"] * 1.25))' "$work/result.json" 2>/dev/null || echo 0)
  : >"$work/busy"
  if [ "$over" -gt 0 ]; then
    gen --mode blast --blast-rate "$over" --trial 3 --quiet --json "$work/over.json" >/dev/null 2>&1 &
    over_pid=$!
    sleep 5  # connect, seal 3 s of payloads, then about 1.5 s into the trial
    build/tools/pomelo-stats --file-prefix "$srv_prefix" --json workers 2>/dev/null >"$work/busy" || true
    wait "$over_pid" || true
  fi
else
  echo "== pomelo-client: $CLIENTS clients x $PAYLOADS payloads of $SIZE bytes, $SUITE"
  gen --payloads "$PAYLOADS" --json "$work/result.json" || status=$?
fi

sleep 1.2  # one stats interval: the server's snapshot catches up
echo
echo "== the server's view (pomelo-stats --file-prefix $srv_prefix summary packets)"
build/tools/pomelo-stats --file-prefix "$srv_prefix" summary packets || true
echo
python3 - "$work/result.json" "$work/busy" "$MODE" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
print("== bottleneck")
if sys.argv[3] == "blast":
    b = r["blast"]
    cap, gen = b["capacity_pps"] or 0, b["generator_max_pps"] or 0
    try:
        busy = max(w.get("busy_percent", 0) for w in json.load(open(sys.argv[2]))["workers"].values())
    except (ValueError, KeyError, OSError):
        busy = None
    print(f"server capacity:  {cap/1e6:.3f} M echoes/s with no loss (1 worker, {r['suite']}, {r['payloads']['size']} B payloads)")
    print(f"generator:        offers up to {gen/1e6:.3f} Mpps ({gen/cap if cap else 0:.1f}x the capacity)")
    print(f"worker busy:      {busy if busy is not None else '?'} % while offered 1.25x the capacity")
    if b["generator_limited"]:
        print("verdict:          the generator: it could not offer more without falling behind")
    elif busy is not None and busy >= 90:
        print("verdict:          the server: its worker was saturated, the generator had room to spare")
    else:
        print("verdict:          unclear: echoes were lost with the worker not saturated (device rings? the CPUs shared?)")
else:
    print(f"echo rate:        {r['echo_rate_pps']/1e6:.3f} M echoes/s: bounded by the clients' window of 32 "
          "unanswered payloads; MODE=blast measures the server's capacity")
PY
kill -TERM "$server_pid"
wait "$server_pid" || status=$?
server_pid=""
echo
tail -n 1 "$work/server.log"
exit $status
