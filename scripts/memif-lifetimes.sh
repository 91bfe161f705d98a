#!/usr/bin/env bash
# One long-running pomelo-server on one net_memif socket, and N load-generator lifetimes in a
# row against it (pomelo-client, the DPDK process at the other end of the memif): a mix of
# clean runs and generators SIGKILLed at random moments (before the link is up, during the
# handshakes, mid-echo). After each lifetime the server must still be alive; every clean run
# must echo everything. At the end a last clean run must echo every payload byte-identical, the
# server must stop cleanly on SIGTERM, and /var/run/dpdk must hold nothing of ours.
#
#   scripts/memif-lifetimes.sh            # 200 lifetimes
#   scripts/memif-lifetimes.sh 50         # 50
#   SEED=7 STRESS=2 scripts/memif-lifetimes.sh   # reproducible schedule; 2 CPU burners running
#   MODES=2 SERVER=/tmp/old/pomelo-server scripts/memif-lifetimes.sh 100   # mid-echo kills only,
#                                                   # against another build of the server
#
# A crashed server is counted, its last log lines shown, and a new one started, so a run on a
# faulty build reports how often it crashes. Exit status 0 only with no crash, every clean run
# and the final run correct, a clean server stop and nothing left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
SEED="${SEED:-$$}"
STRESS="${STRESS:-0}"  # busy-loop processes competing for the CPUs (contention widens races)
MODES="${MODES:-012}"  # lifetimes drawn from: 0 clean, 1 killed early (link, handshake), 2 killed mid-echo
SERVER="${SERVER:-build/tools/pomelo-server}"
RANDOM=$SEED

if [ ! -x build/tools/pomelo-server ] || [ ! -x build/tools/pomelo-client ]; then
  scripts/setup.sh >/dev/null
else
  ninja -C build >/dev/null
fi

work=$(mktemp -d /tmp/pomelo-lifetimes.XXXXXX)
tag="pomelo-lt-$$"
srv_prefix="$tag-srv"
server_pid=""
client_pid=""
stress_pids=()
cleanup() {
  for p in "${stress_pids[@]}" $client_pid; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work" /var/run/dpdk/"$tag"-* 2>/dev/null || true
}
trap cleanup EXIT

build/tools/pomelo-token keygen -o "$work/server.key"
protocol_id=0x504f4d454c4f0002
server_addr=198.18.0.1:40000
sock="$work/memif.sock"
eal=(--no-huge --no-pci -m 256 --log-level error)

start_server() {
  "$SERVER" "${eal[@]}" --file-prefix "$srv_prefix" -l 0-1 \
    --vdev "net_memif0,role=server,socket=$sock,mac=02:00:00:00:00:01" -- --driver ethdev \
    --bind "$server_addr" --protocol-id "$protocol_id" --key "$work/server.key" --max-clients 4096 \
    --token-journal "$work/tokens" \
    >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    [ "$(grep -c "pomelo-server: serving" "$work/server.log")" -gt "$servers_started" ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "server did not start:"; tail -n 20 "$work/server.log"; exit 1; }
    sleep 0.1
  done
  servers_started=$((servers_started + 1))
}

# Generator i: its own file prefix, client ids and addresses, so that peers a killed generator
# left behind (they time out on the server) never collide with the next one's.
client_args() {  # i clients payloads
  local i=$1
  echo "${eal[*]} --file-prefix $tag-cli-$i -l 0" \
    "--vdev net_memif0,role=client,socket=$sock,mac=02:00:00:00:00:02,rsize=12" \
    "-- --driver ethdev --gateway-mac 02:00:00:00:00:01 --server $server_addr" \
    "--bind 198.18.$((1 + i / 250)).$((1 + i % 250)) --client-id-base $((1 + i * 100))" \
    "--key $work/server.key --protocol-id $protocol_id --clients $2 --payloads $3 --size $((8 + RANDOM % 1100))" \
    "--timeout 5 --json"
}

for _ in $(seq "$STRESS"); do
  (while :; do :; done) &
  stress_pids+=($!)
done

servers_started=0
start_server
clean=0 clean_ok=0 killed=0 crashes=0 exited_before_kill=0
printf "seed %s, %s lifetimes (modes %s), %s CPU burner(s), server %s; logs in %s\n" "$SEED" "$N" "$MODES" "$STRESS" \
  "$SERVER" "$work"
for i in $(seq 1 "$N"); do
  mode=${MODES:$((RANDOM % ${#MODES})):1}
  # shellcheck disable=SC2046
  build/tools/pomelo-client $(client_args "$i" $((1 + RANDOM % 16)) $((200 + RANDOM % 2000))) \
    >"$work/client.out" 2>"$work/client.err" &
  client_pid=$!
  if [ "$mode" -eq 0 ]; then
    clean=$((clean + 1))
    rc=0
    wait "$client_pid" || rc=$?
    if [ "$rc" -eq 0 ] && grep -q '"mismatched":0' "$work/client.out" && grep -q '"ok":true' "$work/client.out"; then
      clean_ok=$((clean_ok + 1))
    else
      echo "lifetime $i: clean generator failed (exit $rc): $(tail -c 300 "$work/client.err")$(tail -c 300 "$work/client.out")"
    fi
  else
    if [ "$mode" -eq 1 ]; then delay_ms=$((RANDOM % 400)); else delay_ms=$((300 + RANDOM % 1500)); fi
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    if kill -KILL "$client_pid" 2>/dev/null; then killed=$((killed + 1)); else exited_before_kill=$((exited_before_kill + 1)); fi
    wait "$client_pid" 2>/dev/null || true
  fi
  client_pid=""
  rm -rf "/var/run/dpdk/$tag-cli-$i"  # a killed generator cannot remove its own
  # The server must outlive the peer's disconnect: give its interrupt thread time to unmap.
  sleep 0.2
  if ! kill -0 "$server_pid" 2>/dev/null; then
    rc=0
    wait "$server_pid" || rc=$?
    crashes=$((crashes + 1))
    echo "lifetime $i (mode $mode): SERVER DIED (exit status $rc); last lines:"
    tail -n 5 "$work/server.log" | sed 's/^/    /'
    rm -rf "/var/run/dpdk/$srv_prefix"
    start_server
  fi
  if ((i % 20 == 0)); then echo "  $i lifetimes: $killed killed, $clean clean ($clean_ok ok), $crashes server crash(es)"; fi
done
for p in "${stress_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
stress_pids=()

# The last generator: a clean run after all of the above, every byte checked.
final="failed"
final_rc=0
# shellcheck disable=SC2046
build/tools/pomelo-client $(client_args $((N + 1)) 16 1000) >"$work/final.out" 2>"$work/final.err" || final_rc=$?
if [ "$final_rc" -eq 0 ] && grep -q '"echoed":16000' "$work/final.out" && grep -q '"mismatched":0' "$work/final.out" &&
  grep -q '"lost":0' "$work/final.out"; then
  final="16000/16000 echoed byte-identical"
else
  echo "final run (exit $final_rc):"
  cat "$work/final.out" "$work/final.err"
fi

stop="ok"
kill -TERM "$server_pid"
srv_rc=0
wait "$server_pid" || srv_rc=$?
server_pid=""
[ "$srv_rc" -eq 0 ] || stop="exit status $srv_rc"
# Removing the server's runtime directory is the EAL layer's job; leftovers are reported here.
left=$(ls -d /var/run/dpdk/"$tag"-* 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ' || true)

echo
printf "%-34s %s\n" "lifetimes" "$N" \
  "generators SIGKILLed" "$killed" \
  "  (exited before the kill)" "$exited_before_kill" \
  "clean generator runs ok" "$clean_ok/$clean" \
  "server crashes" "$crashes" \
  "final run" "$final" \
  "server stop (SIGTERM)" "$stop" \
  "left in /var/run/dpdk" "${left:-nothing}"
[ "$crashes" -eq 0 ] && [ "$clean_ok" -eq "$clean" ] && [ "$final" != "failed" ] && [ "$stop" = ok ] && [ -z "$left" ]
