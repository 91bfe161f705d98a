#!/usr/bin/env bash
# The main job: pomelo-server and the load generator (pomelo-client) as two processes joined
# by net_memif (shared memory: the stand-in for a NIC on a host without one). The generator
# mints its own connect tokens, connects CLIENTS clients, echoes PAYLOADS payloads each off
# the server's echo application, checks every byte, and disconnects. Prints the generator's
# summary and the server's own counters (DPDK telemetry, via pomelo-stats).
#
#   scripts/run.sh                      # 100 clients x 1000 payloads of 64 bytes
#   CLIENTS=1000 PAYLOADS=100 SIZE=1200 scripts/run.sh
#   DRIVER=socket scripts/run.sh        # kernel UDP on 127.0.0.1 instead of memif
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${CLIENTS:-100}"
PAYLOADS="${PAYLOADS:-1000}"
SIZE="${SIZE:-64}"
DRIVER="${DRIVER:-memif}"

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
  client_eal=("${eal[@]}" --file-prefix "$cli_prefix" -l 0
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

echo
echo "== pomelo-client: $CLIENTS clients x $PAYLOADS payloads of $SIZE bytes"
status=0
build/tools/pomelo-client "${client_eal[@]}" -- "${client_opts[@]}" --server "$server_addr" \
  --key "$work/server.key" --protocol-id "$protocol_id" --clients "$CLIENTS" --payloads "$PAYLOADS" \
  --size "$SIZE" || status=$?

sleep 1.2  # one stats interval: the server's snapshot catches up
echo
echo "== the server's view (pomelo-stats --file-prefix $srv_prefix summary packets)"
build/tools/pomelo-stats --file-prefix "$srv_prefix" summary packets || true
kill -TERM "$server_pid"
wait "$server_pid" || status=$?
server_pid=""
echo
tail -n 1 "$work/server.log"
exit $status
