"""Where a connected peer's memory goes: pomelo-server's RSS by mapping kind (from
/proc/PID/smaps) with no peer and with N connected, and glibc's malloc statistics per arena
(malloc_stats() called through gdb) at the end. The same load as perf/bench.py's memory row.

    flock /tmp/pomelo-cpu.lock python3 perf/memory_probe.py [N] [server options...]
    (BIN=dir: other pomelo-server/-stats/-token; GEN=path: another pomelo-client)
The per-peer figure leaves out the memif regions, as perf/bench.py does.
"""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.environ.get("BIN") or os.path.join(ROOT, "build", "tools")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
EXTRA = sys.argv[2:]
work = tempfile.mkdtemp(prefix="pomelo-memprobe-")
key = os.path.join(work, "key")
subprocess.run([os.path.join(B, "pomelo-token"), "keygen", "-o", key], check=True, stdout=subprocess.DEVNULL)
pid_tag = os.getpid()
srv_prefix, cli_prefix = f"pomelo-memprobe-srv-{pid_tag}", f"pomelo-memprobe-cli-{pid_tag}"
sock = os.path.join(work, "memif.sock")


def by_mapping(pid):
    """RSS (bytes) by kind: brk heap, thread arenas (64 MiB-aligned heaps), the DPDK memory
    (the -m region), other anonymous mappings (large malloc chunks, vectors), files, stack."""
    out = collections.Counter()
    kind = None
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$", line)
        if m:
            lo, hi, name = int(m[1], 16), int(m[2], 16), m[3].strip()
            size = hi - lo
            if name == "[heap]":
                kind = "brk heap (main arena)"
            elif name.startswith("[stack"):
                kind = "stack"
            elif name.startswith("/") or name.startswith("["):
                # memfd: DPDK's memory without hugepages, memif regions
                kind = ("file " + re.sub(r"[0-9]+", "N", name))[:60]
            elif lo % (64 << 20) == 0 and size <= (64 << 20):
                kind = "thread arena heaps"
            elif size >= (256 << 20):
                kind = "dpdk memory (-m)"
            else:
                kind = "anonymous mmap (large chunks)"
            continue
        if line.startswith("Rss:") and kind:
            out[kind] += int(line.split()[1]) * 1024
    return out


def rss(pid):
    """RSS less the memif regions (the generator's packet buffers, see perf/bench.py)."""
    return sum(v for k, v in by_mapping(pid).items() if "memif_region" not in k)


def stats(prefix):
    r = subprocess.run([os.path.join(B, "pomelo-stats"), "--file-prefix", prefix, "--json", "summary"],
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout)["summary"]
    except (ValueError, KeyError):
        return {}


log = open(os.path.join(work, "server.log"), "w+")
srv = subprocess.Popen([os.path.join(B, "pomelo-server"), "--no-huge", "--no-pci", "-m", "512", "--log-level", "error",
                        "--file-prefix", srv_prefix, "-l", "0-1", "--vdev",
                        f"net_memif0,role=server,socket={sock},mac=02:00:00:00:00:01", "--", "--driver", "ethdev",
                        "--bind", "198.18.0.1:40000", "--protocol-id", "0x1", "--key", key, "--token-journal",
                        os.path.join(work, "tokens"), "--stats-interval", "1", "--max-clients", str(N)] + EXTRA,
                       stdout=log, stderr=subprocess.STDOUT)
gen = None
try:
    for _ in range(200):
        log.seek(0)
        if "serving" in log.read():
            break
        time.sleep(0.1)
    time.sleep(1)
    m0, r0 = by_mapping(srv.pid), rss(srv.pid)
    gen = subprocess.Popen([os.environ.get("GEN") or os.path.join(B, "pomelo-client"), "--no-huge", "--no-pci", "-m", "1024", "--log-level", "error",
                            "--file-prefix", cli_prefix, "-l", "0", "--vdev",
                            f"net_memif0,role=client,socket={sock},mac=02:00:00:00:00:02,rsize=12", "--", "--driver",
                            "ethdev", "--gateway-mac", "02:00:00:00:00:01", "--bind", "198.18.1.1", "--server",
                            "198.18.0.1:40000", "--key", key, "--protocol-id", "0x1", "--quiet", "--mode", "blast",
                            "--clients", str(N), "--blast-rate", "1000", "--trial", "30", "--connect-rate", "4000",
                            "--timeout", "60"], stdout=open(os.path.join(work, "gen.log"), "w"), stderr=subprocess.STDOUT)
    connected, peak, m1 = 0, 0, None
    deadline = time.time() + 150
    while time.time() < deadline and gen.poll() is None:
        connected = stats(srv_prefix).get("peers_connected", 0)
        peak = max(peak, rss(srv.pid))
        if connected >= N:
            time.sleep(1.5)
            peak = max(peak, rss(srv.pid))
            m1 = by_mapping(srv.pid)
            break
        time.sleep(1)
    r1 = rss(srv.pid)
    if gen.poll() is not None: print("generator exited:", open(os.path.join(work, "gen.log")).read()[-1500:])
    print(f"connected {connected}; RSS at 0: {r0 / 2**20:.1f} MiB, at {connected}: {r1 / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB; per peer {(r1 - r0) / max(connected, 1):.0f} B (peak: "
          f"{(peak - r0) / max(connected, 1):.0f} B)")
    if m1:
        print(f"{'mapping kind':60} {'at 0 (KiB)':>12} {'at N (KiB)':>12} {'B per peer':>11}")
        for k in sorted(set(m0) | set(m1)):
            if abs(m1[k] - m0[k]) < 64 * 1024 and m1[k] < (1 << 20):
                continue
            print(f"{k:60} {m0[k] / 1024:12.0f} {m1[k] / 1024:12.0f} {(m1[k] - m0[k]) / max(connected, 1):11.1f}")
    # glibc's view: bytes each arena holds from the system and bytes in use (to the server's stderr).
    log.seek(0, 2)
    mark = log.tell()
    subprocess.run(["gdb", "-p", str(srv.pid), "-batch", "-ex", "call (void)malloc_stats()", "-ex", "detach"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    time.sleep(0.5)
    log.seek(mark)
    print("malloc_stats():")
    for line in log.read().splitlines():
        if re.match(r"^(Arena|system bytes|in use bytes|Total|max mmap)", line):
            print("  " + line)
finally:
    if gen and gen.poll() is None:
        gen.send_signal(signal.SIGINT)
        try:
            gen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            gen.kill()
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
    for p in (srv_prefix, cli_prefix):
        shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
