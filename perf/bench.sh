#!/usr/bin/env bash
# Every performance target of the engine in one run, as ratios against baselines measured in
# the same run on this machine, each marked PASS or MISS (perf/RESULTS.md explains the MISSes):
#
#   data path      engine echo capacity / bare loop (rx -> AEAD open -> AEAD seal -> tx) on
#                  the same memif port, per suite and payload size, 1 worker          >= 0.85
#   crypto         engine capacity / the AEAD alone (open + seal per echo, bench_server)  info
#   socket driver  pomelo-server --driver socket / plain UDP echo (recvmmsg/sendmmsg)   >= 0.80
#   handshakes     connect-storm handshakes/s / the handshake's crypto alone (control)  >= 0.80
#   REQUEST filter stateless REQUEST rejects per second on the worker            >= 1.5 M/s
#   flood          echo p99 RTT under a flood at half the filter rate / without      <= 2.0
#   memory         server RSS per connected peer at N peers                      <= 1024 B
#
#   perf/bench.sh                 # everything (~10 minutes)
#   QUICK=1 perf/bench.sh         # 64 B only, shorter trials
#   ONLY=datapath,socket perf/bench.sh
#
# Needs nothing running beside it: zero-loss capacity searches are upset by any other load on
# these CPUs. Absolute figures drift between runs; the ratios are what is compared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
ninja -C build perf/bench_server perf/bench_codec perf/udp_echo >/dev/null
exec python3 perf/bench.py "$@"
