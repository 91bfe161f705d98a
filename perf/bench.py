"""perf/bench.sh's body: runs every measurement, prints one table of ratios (see bench.sh)."""
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
B = os.path.join(ROOT, "build")
SERVER, CLIENT, TOKEN, STATS = (os.path.join(B, "tools", t) for t in ("pomelo-server", "pomelo-client", "pomelo-token", "pomelo-stats"))
QUICK = os.environ.get("QUICK") == "1"
ONLY = set(filter(None, os.environ.get("ONLY", "").split(",")))
SIZES = [64] if QUICK else [64, 256, 1200]
TRIAL = "0.2" if QUICK else "0.3"
PROTOCOL_ID = "0x504f4d454c4f0001"
rows = []  # (section, what, value text, baseline text, ratio, target text, verdict)
work = tempfile.mkdtemp(prefix="pomelo-bench-")
subprocess.run([TOKEN, "keygen", "-o", os.path.join(work, "key")], check=True, stdout=subprocess.DEVNULL)
KEY = os.path.join(work, "key")
serial = [0]


def wanted(section):
    return not ONLY or section in ONLY


def row(section, what, value, baseline, ratio, target, ok):
    # ok: True PASS, False MISS, None info, "invalid" when the measurement cannot decide (the
    # generator, not the server, limited it)
    verdict = "info" if ok is None else "INVALID" if ok == "invalid" else ("PASS" if ok else "MISS")
    rows.append((section, what, value, baseline, ratio, target, verdict))
    print(f"  {section:9} {what:38} {value:>14} {baseline:>14} {ratio:>7} {target:>9} {verdict}", flush=True)


class Server:
    """pomelo-server on memif (ethdev) or kernel sockets; stopped with SIGTERM."""

    def __init__(self, extra=(), driver="memif", cpus="0-1"):
        serial[0] += 1
        self.prefix = f"pomelo-bench-srv-{os.getpid()}-{serial[0]}"
        self.sock = os.path.join(work, f"memif{serial[0]}.sock")
        eal = ["--no-huge", "--no-pci", "-m", "512", "--log-level", "error", "--file-prefix", self.prefix, "-l", cpus]
        if driver == "memif":
            eal += ["--vdev", f"net_memif0,role=server,socket={self.sock},mac=02:00:00:00:00:01"]
            ours = ["--driver", "ethdev", "--bind", "198.18.0.1:40000"]
            self.address = "198.18.0.1:40000"
        else:
            self.address = f"127.0.0.1:{43000 + serial[0]}"
            ours = ["--driver", "socket", "--bind", self.address]
        ours += ["--protocol-id", PROTOCOL_ID, "--key", KEY, "--token-journal", os.path.join(work, f"tokens{serial[0]}"),
                 "--stats-interval", "1"] + list(extra)
        self.log = open(os.path.join(work, f"server{serial[0]}.log"), "w+")
        self.p = subprocess.Popen([SERVER] + eal + ["--"] + ours, stdout=self.log, stderr=subprocess.STDOUT)
        self.driver = driver
        for _ in range(200):
            self.log.seek(0)
            if "serving" in self.log.read():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        self.log.seek(0)
        raise RuntimeError("pomelo-server did not start: " + self.log.read()[-2000:])

    def stats(self, command):
        r = subprocess.run([STATS, "--file-prefix", self.prefix, "--json", command], capture_output=True, text=True)
        try:
            return json.loads(r.stdout)[command]
        except (ValueError, KeyError):
            return {}

    def rss(self):
        """Resident bytes, less the memif regions: the generator's packet buffers, which the
        server maps once the generator attaches (16 MiB at rsize=12, whatever the number of
        peers). They are the link's, not the server's (a NIC has none), and they are mapped
        after an RSS "at 0" is taken, so counting them charged ~280 B to each of 60,000 peers."""
        total, memif, region = 0, 0, False
        for line in open(f"/proc/{self.p.pid}/smaps"):
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                region = "memif_region" in line
            elif line.startswith("Rss:"):
                n = int(line.split()[1]) * 1024
                total += n
                memif += n if region else 0
        return total - memif

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def generate(server, args, timeout=300, background=False):
    """pomelo-client against `server`; returns its JSON summary (or the Popen when background)."""
    serial[0] += 1
    out = os.path.join(work, f"gen{serial[0]}.json")
    prefix = f"pomelo-bench-cli-{os.getpid()}-{serial[0]}"
    if server.driver == "memif":
        cmd = [CLIENT, "--no-huge", "--no-pci", "-m", "1024", "--log-level", "error", "--file-prefix", prefix, "-l", "0",
               "--vdev", f"net_memif0,role=client,socket={server.sock},mac=02:00:00:00:00:02,rsize=12", "--",
               "--driver", "ethdev", "--gateway-mac", "02:00:00:00:00:01", "--bind", "198.18.1.1"]
    else:
        cmd = [CLIENT, "--no-huge", "--no-pci", "-m", "512", "--log-level", "error", "--file-prefix", prefix, "-l", "0",
               "--", "--driver", "socket"]
    cmd += ["--server", server.address, "--key", KEY, "--protocol-id", PROTOCOL_ID, "--quiet", "--json", out] + list(args)
    log = open(out + ".log", "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    if background:
        p.json_path = out
        return p
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    try:
        return json.load(open(out))
    except (OSError, ValueError):
        return {}


def capacity(server_extra, suite, size, driver="memif", clients=100):
    with Server(server_extra, driver) as s:
        r = generate(s, ["--mode", "blast", "--clients", str(clients), "--size", str(size), "--suite", suite,
                         "--trial", TRIAL])
    b = r.get("blast", {})
    return b.get("capacity_pps") or 0.0, b.get("generator_limited", False), b.get("generator_max_pps") or 0.0


def fmt_rate(x):
    return f"{x / 1e6:.3f} M/s"


def bench_json(program, flt):
    out = os.path.join(work, os.path.basename(program) + ".json")
    subprocess.run([os.path.join(B, "perf", program), f"--benchmark_filter={flt}", "--benchmark_format=json",
                    "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2"],
                   stdout=open(out, "w"), stderr=subprocess.DEVNULL, check=True)
    doc = json.load(open(out))
    med = {b["run_name"]: b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"}
    return med


print(f"pomelo-engine perf/bench.sh: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
      f"{'QUICK ' if QUICK else ''}(1 worker; a 2nd worker needs a 3rd CPU beside the generator)")
print(f"  {'section':9} {'what':38} {'value':>14} {'baseline':>14} {'ratio':>7} {'target':>9} verdict")

# --- crypto alone (Google Benchmark): the AEAD per echo, and the handshake's crypto ---------
crypto_limit = {}
if wanted("datapath") or wanted("crypto"):
    med = bench_json("bench_server", "BM_Bare")
    for suite, key in (("chacha", "ipsecmb_chacha"), ("aesgcm", "ipsecmb_aesgcm")):
        o, sl = med.get(f"BM_BareOpen/{key}_median") or med.get(f"BM_BareOpen/{key}"), \
            med.get(f"BM_BareSeal/{key}_median") or med.get(f"BM_BareSeal/{key}")
        if o and sl:
            ns = 1e9 / o["items_per_second"] + 1e9 / sl["items_per_second"]
            crypto_limit[suite] = 1e9 / ns
            row("crypto", f"AEAD open+seal, 64 B, {suite}", f"{ns:.0f} ns", "", "", "", None)
handshake_limit = 0
if wanted("storm"):
    med = bench_json("bench_codec", "BM_RequestOpen|BM_ChallengeTokenSeal|BM_ChallengeTokenOpen|"
                                    "BM_PacketWrite/challenge|BM_PacketRead/response")
    parts = {"token decrypt": "BM_RequestOpen", "challenge token seal": "BM_ChallengeTokenSeal",
             "CHALLENGE seal": "BM_PacketWrite/challenge", "RESPONSE open": "BM_PacketRead/response",
             "challenge token open": "BM_ChallengeTokenOpen"}
    total = 0.0
    for label, name in parts.items():
        b = next((v for k, v in med.items() if k.startswith(name)), None)
        if b:
            ns = b["real_time"] if b.get("time_unit") == "ns" else b["real_time"] * 1000
            total += ns
    if total:
        handshake_limit = 1e9 / total
        row("crypto", "handshake crypto (5 ops, control core)", f"{total:.0f} ns", "", "", "", None)
        # The control thread's whole handshake (Handshake::handle, REQUEST and RESPONSE, the
        # CHALLENGE sealed in a burst), the clients' share untimed: what the 5 ops become.
        hs = next(iter(bench_json("bench_server", "BM_Handshake").values()), None)
        if hs:
            path_ns = 1e9 / hs["items_per_second"]
            row("storm", "handshake path (control) vs its crypto", f"{path_ns:.0f} ns", f"{total:.0f} ns",
                f"{total / path_ns:.2f}", ">= 0.80", total / path_ns >= 0.8)

# --- data path over memif: the engine against the bare loop --------------------------------
if wanted("datapath"):
    for suite in ("chacha", "aesgcm"):
        for size in SIZES:
            bare, bare_lim, bare_gen = capacity(["--bare-loop"], suite, size)
            eng, eng_lim, gen = capacity([], suite, size)
            ratio = eng / bare if bare else 0
            limited = bare_lim or eng_lim
            note = " (generator-limited)" if limited else ""
            row("datapath", f"echo {suite} {size} B vs bare loop{note}", fmt_rate(eng), fmt_rate(bare),
                f"{ratio:.2f}", ">= 0.85", "invalid" if limited else ratio >= 0.85)
            row("datapath", f"  generator's send rate vs engine capacity", fmt_rate(gen), fmt_rate(eng),
                f"{gen / eng:.1f}" if eng else "n/a", ">= 3.0", bool(eng) and gen / eng >= 3.0)
            if size == 64 and suite in crypto_limit:
                row("datapath", f"echo {suite} 64 B vs its AEAD alone", fmt_rate(eng), fmt_rate(crypto_limit[suite]),
                    f"{eng / crypto_limit[suite]:.2f}", "", None)

# --- kernel socket driver against a plain UDP echo ------------------------------------------
if wanted("socket"):
    # Two clients: the generator's kernel sockets send a burst with one sendmmsg per socket.
    eng, eng_lim, gen = capacity([], "chacha", 64, driver="socket", clients=2)
    serial[0] += 1
    addr = f"127.0.0.1:{43000 + serial[0]}"
    echo = subprocess.Popen(["taskset", "-c", "1", os.path.join(B, "perf", "udp_echo"), addr],
                            stdout=subprocess.PIPE, text=True)
    echo.stdout.readline()

    class Plain:  # the generator's view of the plain echo: a socket server at addr
        driver = "socket"
        address = addr
    r = generate(Plain, ["--mode", "blast", "--raw", "--clients", "2", "--size", "64", "--trial", TRIAL], timeout=120)
    echo.send_signal(signal.SIGTERM)
    echo.wait()
    # The plain echo speaks no protocol: blast --raw sends it unsealed datagrams.
    plain = (r.get("blast") or {}).get("capacity_pps") or 0
    plain_lim = (r.get("blast") or {}).get("generator_limited", False)
    note = " (generator-limited: a lower bound)" if eng_lim or plain_lim else ""
    row("socket", f"--driver socket vs plain UDP echo{note}", fmt_rate(eng), fmt_rate(plain) if plain else "n/a",
        f"{eng / plain:.2f}" if plain else "n/a", ">= 0.80",
        "invalid" if note else (eng / plain >= 0.8) if plain else False)

# --- handshakes: connect-storm against the handshake's crypto --------------------------------
if wanted("storm"):
    # One round of 10,000 connects paced at 40,000/s (a round's last handshakes wait for a
    # resend: rounds of a few thousand at once measure mostly that tail).
    with Server(["--max-clients", "20000", "--token-history", "1000000"]) as s:
        r = generate(s, ["--mode", "connect-storm", "--clients", "10000", "--connect-rate", "40000", "--duration", "1"])
    rate = (r.get("storm") or {}).get("handshakes_per_s") or 0
    # The control thread needs a CPU of its own: with 2, one is the worker's and the other
    # is shared by the control thread and the generator, which does as much crypto per
    # handshake (token mint, CHALLENGE open, RESPONSE seal): then the generator limits it.
    shared = (os.cpu_count() or 1) < 3
    note = " (control shares a CPU)" if shared else ""
    row("storm", f"connect-storm handshakes/s vs crypto{note}", f"{rate:,.0f}/s", f"{handshake_limit:,.0f}/s",
        f"{rate / handshake_limit:.2f}" if handshake_limit else "n/a", ">= 0.80",
        "invalid" if shared else bool(handshake_limit) and rate / handshake_limit >= 0.8)

# --- REQUEST pre-filter, and a flood beside legitimate clients ------------------------------
filter_rate = 0
if wanted("flood"):
    with Server() as s:
        before = s.stats("drops").get("token_expired", 0)
        r = generate(s, ["--mode", "flood", "--clients", "1", "--payloads", "100000", "--rate", "10", "--duration", "4",
                         "--flood-rate", "8000000", "--flood-kinds", "expired-request", "--flood-sources", "256"])
        time.sleep(2.5)
        after = s.stats("drops").get("token_expired", 0)
    f = r.get("flood") or {}
    secs = f.get("sent", 0) / f["achieved_pps"] if f.get("achieved_pps") else 0
    filter_rate = (after - before) / secs if secs else 0
    all_counted = f.get("sent", 0) and after - before >= f.get("sent", 0)
    note = " (every one sent: the generator's rate)" if all_counted else ""
    row("flood", f"stateless REQUEST rejects{note}", fmt_rate(filter_rate), fmt_rate(1.5e6),
        f"{filter_rate / 1.5e6:.2f}", ">= 1.0", filter_rate >= 1.5e6 or ("invalid" if all_counted else False))

    def echo_p99(flood_rate):
        with Server() as s:
            args = ["--mode", "flood" if flood_rate else "echo", "--clients", "50", "--payloads", "300", "--rate", "100"]
            if flood_rate:
                args += ["--flood-rate", str(int(flood_rate)), "--flood-kinds", "expired-request,junk",
                         "--flood-sources", "256"]
            return generate(s, args)
    base = echo_p99(0)
    attacked = echo_p99(filter_rate / 2) if filter_rate else {}
    p0 = (base.get("echo_rtt_ns") or {}).get("p99", 0)
    p1 = (attacked.get("echo_rtt_ns") or {}).get("p99", 0)
    lost = (attacked.get("payloads") or {}).get("lost", -1)
    achieved = (attacked.get("flood") or {}).get("achieved_pps", 0)
    weak = achieved < 0.9 * filter_rate / 2
    row("flood", f"echo p99 under a {fmt_rate(achieved)} flood, lost {lost}", f"{p1 / 1e3:.0f} us",
        f"{p0 / 1e3:.0f} us", f"{p1 / p0:.2f}" if p0 else "n/a", "<= 2.0",
        "invalid" if weak else bool(p0) and p1 / p0 <= 2.0 and lost == 0)

# --- memory per connected peer ---------------------------------------------------------------
if wanted("memory"):
    # One generator port has at most 65,534 local endpoints (16-bit endpoint index), so one
    # generator process connects at most that many clients.
    n = 20000 if QUICK else 60000
    # Connects paced below the handshake's capacity on these shared CPUs (see the storm row),
    # with room for every handshake in flight. The pending records (~450 B each, allocated at
    # start) have nothing to do with max-clients: the baseline server has as many, so the
    # second row counts what max-clients reserves, as its label says.
    pending = ["--max-pending", "65536"]
    with Server(["--max-clients", "1"] + pending) as s:
        time.sleep(1)
        rss_min = s.rss()
    with Server(["--max-clients", str(n)] + pending) as s:
        time.sleep(1)
        rss0 = s.rss()
        p = generate(s, ["--mode", "blast", "--clients", str(n), "--blast-rate", "1000", "--trial", "30",
                         "--connect-rate", "4000", "--timeout", "60"], background=True)
        peak, connected = 0, 0
        deadline = time.time() + 150
        while time.time() < deadline and p.poll() is None:
            connected = s.stats("summary").get("peers_connected", 0)
            peak = max(peak, s.rss())
            if connected >= n:
                time.sleep(1.5)
                peak = max(peak, s.rss())
                break
            time.sleep(1)
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    per_connected = (peak - rss0) / max(connected, 1)
    per_all = (peak - rss_min) / max(connected, 1)
    row("memory", f"RSS per peer, {connected} connected (- RSS at 0)", f"{per_connected:.0f} B", "", "", "<= 1024",
        connected >= n and per_connected <= 1024)
    row("memory", f"... counting what max-clients {n} reserves", f"{per_all:.0f} B", "", "", "<= 1024",
        connected >= n and per_all <= 1024)

shutil.rmtree(work, ignore_errors=True)
print()
misses = [r for r in rows if r[6] == "MISS"]
print(f"{sum(r[6] == 'PASS' for r in rows)} PASS, {len(misses)} MISS, {sum(r[6] == 'INVALID' for r in rows)} INVALID"
      + ("" if not misses else " (perf/RESULTS.md: profile and reason of each)"))
