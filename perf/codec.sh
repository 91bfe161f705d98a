#!/usr/bin/env bash
# Codec cost per packet type against the bare AEAD of the same body size, measured in the
# same run (the ratio is what to compare across machines). Usage: perf/codec.sh [REPETITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
ninja -C build perf/bench_codec >/dev/null
out=build/bench_codec.json
./build/perf/bench_codec --benchmark_format=json --benchmark_repetitions="${1:-5}" \
  --benchmark_report_aggregates_only=true --benchmark_min_time=0.2 >"$out"
python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ns = {b["run_name"]: b["real_time"] for b in doc["benchmarks"] if b.get("run_type") == "iteration"}
ns.update({b["run_name"]: b["real_time"] for b in doc["benchmarks"] if b.get("aggregate_name") == "median"})
def get(name): return ns.get(name)
print(f"host: {doc['context'].get('host_name','?')}, {doc['context']['num_cpus']} cpus, "
      f"{doc['context']['mhz_per_cpu']} MHz; medians of {doc['benchmarks'][0].get('repetitions','?')} runs\n")
print(f"{'packet (body bytes)':28} {'write ns':>9} {'read ns':>9} {'AEAD ns':>9} {'write/AEAD':>11} {'read/AEAD':>10}")
rows = [("denied (0)", "denied", "chacha0", 25), ("disconnect (0)", "disconnect", "chacha0", 25),
        ("ping (17)", "ping", "chacha17", 42), ("pong (10)", "pong", "chacha10", 35),
        ("challenge (308)", "challenge", "chacha308", 333), ("response (308)", "response", "chacha308", 333),
        ("payload (64)", "payload64", "chacha64", 83), ("payload (1200)", "payload1200", "chacha1200", 1219)]
for label, name, aead, size in rows:
    w, r, a = get(f"BM_PacketWrite/{name}"), get(f"BM_PacketRead/{name}"), get(f"BM_AeadSeal/{aead}")
    restore = get("BM_Restore/83") if size <= 83 else get("BM_Restore/1219")
    r -= restore  # the read benchmark restores the ciphertext each iteration
    print(f"{label:28} {w:9.1f} {r:9.1f} {a:9.1f} {w/a:11.3f} {r/a:10.3f}")
print()
print(f"{'body codec only (no AEAD)':28} {'write ns':>9} {'read ns':>9}")
for t in ("ping", "pong", "challenge"):
    print(f"{t:28} {get(f'BM_BodyWrite/{t}'):9.1f} {get(f'BM_BodyRead/{t}'):9.1f}")
print(f"{'header':28} {'':9} {get('BM_HeaderRead'):9.1f}")
print()
base = get("BM_AeadSeal/chacha1200")
print(f"{'token / AEAD operation':28} {'ns':>9} {'vs chacha 1200 B':>17}")
for label, name in [("mint connect token", "BM_TokenMint"), ("decode public token", "BM_TokenDecodePublic"),
                    ("open REQUEST (XChaCha 1 KB)", "BM_RequestOpen"), ("seal challenge token", "BM_ChallengeTokenSeal"),
                    ("open challenge token", "BM_ChallengeTokenOpen"), ("AEAD chacha 64 B", "BM_AeadSeal/chacha64"),
                    ("AEAD aesgcm 64 B (sodium)", "BM_AeadSeal/aesgcm64"), ("AEAD aesgcm 1200 B (sodium)", "BM_AeadSeal/aesgcm1200")]:
    v = get(name)
    print(f"{label:28} {v:9.1f} {v/base:17.3f}" if v else f"{label:28} {'n/a':>9}")
print()
# Burst AEAD backends (issue 4): crypto::BurstAead over bursts of 32 packets of 64 B, one key per
# packet; per-packet ns = burst ns / 32, open minus the ciphertext restore (BM_BurstRestore).
# "keys not prepared": IPsec-MB expands all 32 AES-GCM keys in every burst (libsodium always does).
per = 32
restore = (get("BM_BurstRestore") or 0) / per
def pkt(bench, name, opening):
    v = get(f"{bench}/{name}")
    return v / per - (restore if opening else 0) if v else None
print(f"{'burst AEAD, 32 x 64 B, ns/packet':36} {'sodium':>9} {'ipsec-mb':>9} {'ipsec-mb/sodium':>16}")
for label, bench, suite, mb_name in [("seal chacha", "BM_BurstSeal", "chacha", "ipsecmb_chacha"),
                                     ("open chacha", "BM_BurstOpen", "chacha", "ipsecmb_chacha"),
                                     ("seal aesgcm", "BM_BurstSeal", "aesgcm", "ipsecmb_aesgcm"),
                                     ("open aesgcm", "BM_BurstOpen", "aesgcm", "ipsecmb_aesgcm"),
                                     ("seal aesgcm, keys not prepared", "BM_BurstSeal", "aesgcm", "ipsecmb_aesgcm_unprepared"),
                                     ("open aesgcm, keys not prepared", "BM_BurstOpen", "aesgcm", "ipsecmb_aesgcm_unprepared")]:
    opening = bench == "BM_BurstOpen"
    so, mb = pkt(bench, f"sodium_{suite}", opening), pkt(bench, mb_name, opening)
    f = lambda v: f"{v:9.1f}" if v else f"{'n/a':>9}"
    ratio = f"{mb / so:16.3f}" if so and mb else f"{'n/a':>16}"
    print(f"{label:36} {f(so)} {f(mb)} {ratio}")
PY
