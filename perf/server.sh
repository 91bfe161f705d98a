#!/usr/bin/env bash
# The server's data path per packet (bursts of 32 × 64 B PAYLOADs) against the bare AEAD of
# the same burst, measured in the same run. Usage: perf/server.sh [REPETITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
ninja -C build perf/bench_server >/dev/null
out=build/bench_server.json
./build/perf/bench_server --benchmark_format=json --benchmark_repetitions="${1:-5}" \
  --benchmark_report_aggregates_only=true --benchmark_min_time=0.2 >"$out" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
med = {b["run_name"]: b for b in doc["benchmarks"] if b.get("run_type") == "iteration"}
med.update({b["run_name"]: b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"})
def per_packet(name):
    b = med.get(name)
    if not b or b.get("error_occurred"): return None
    return 1e9 / b["items_per_second"]
print(f"host: {doc['context'].get('host_name','?')}, {doc['context']['num_cpus']} cpus; "
      f"medians of {doc['benchmarks'][0].get('repetitions','?')} runs; ns per packet, bursts of 32 x 64 B\n")
print(f"{'backend / suite':22} {'receive':>8} {'bare open':>10} {'ratio':>6} {'send':>8} {'bare seal':>10} {'ratio':>6} {'Mpps/core rx':>13}")
for label, key in [("libsodium chacha", "sodium_chacha"), ("ipsec-mb chacha", "ipsecmb_chacha"),
                   ("ipsec-mb aes-gcm", "ipsecmb_aesgcm")]:
    r, o = per_packet(f"BM_ServerReceive/{key}"), per_packet(f"BM_BareOpen/{key}")
    w, c = per_packet(f"BM_ServerSend/{key}"), per_packet(f"BM_BareSeal/{key}")
    if None in (r, o, w, c):
        print(f"{label:22} {'unavailable':>8}")
        continue
    print(f"{label:22} {r:8.1f} {o:10.1f} {r/o:6.2f} {w:8.1f} {c:10.1f} {w/c:6.2f} {1e3/r:13.2f}")
PY
