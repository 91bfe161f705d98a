#!/usr/bin/env python3
"""The Prometheus endpoint of the real pomelo-server (issue 10), scraped over HTTP.

pomelo-server runs on kernel UDP sockets on 127.0.0.1 with two workers and `--metrics 0`
(port only: loopback, a free port); the load generator (pomelo-client) is its traffic. Each
scrape is a real HTTP GET (urllib) parsed by python3-prometheus-client, and its values are
checked against what the generator reports:
  - while 20 clients are held connected: peers{state="connected"} == 20, the RTT histogram
    counts the 20 peers (cumulative buckets, +Inf == count), both workers hold peers and have
    worked (busy seconds > 0, busy ratio within 0..1);
  - after they echoed and disconnected: payloads received == sent by the clients, payloads
    sent == echoed, RESPONSEs handled == handshakes == 20, DISCONNECTs handled == 20, no peers,
    no authentication failures, every drop reason of the three layers present;
  - bad --metrics values are one line and a non-zero exit; an address in use is one line.

Usage: metrics_test.py SERVER CLIENT TOKEN   (meson passes the built tools)
Prints each failed check and exits 1 if any failed.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

SERVER, CLIENT, TOKEN = sys.argv[1:4]
PROTOCOL_ID = "0x3e7"
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return ok


def wait_for(pred, seconds=30.0, step=0.2):
    """Polls pred() until it returns something truthy (returned), or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return None


def scrape(url):
    """{(sample name, frozenset of labels): value} and {family name: type} of one scrape."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        check(reply.status == 200, f"GET {url}: status {reply.status}")
        check(reply.headers.get_content_type() == "text/plain", f"content type {reply.headers.get_content_type()}")
        text = reply.read().decode()
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def label_values(samples, name, label):
    return {dict(k[1]).get(label) for k in samples if k[0] == name}


work = tempfile.mkdtemp(prefix="pomelo-metrics-test-")
procs = []


def spawn(args, log):
    p = subprocess.Popen(args, stdout=open(os.path.join(work, log + ".out"), "w"),
                         stderr=open(os.path.join(work, log + ".err"), "w"), stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def output(log, stream="out"):
    with open(os.path.join(work, f"{log}.{stream}")) as f:
        return f.read()


def server_args(prefix, extra):
    return [SERVER, "--no-huge", "--no-pci", "-m", "256", "--file-prefix", prefix, "--log-level", "error",
            "--lcores", "0@0,1@1,2@1", "--", "--driver", "socket", "--bind", "127.0.0.1:0",
            "--protocol-id", PROTOCOL_ID, "--key", key, "--token-journal", os.path.join(work, prefix + ".tokens"),
            "--stats-interval", "0"] + extra


try:
    key = os.path.join(work, "server.key")
    subprocess.run([TOKEN, "keygen", "-o", key], check=True, stdout=subprocess.DEVNULL)
    prefix = f"pomelo-metrics-test-{os.getpid()}"
    server = spawn(server_args(prefix, ["--workers", "2", "--metrics", "0"]), "server")
    started = wait_for(lambda: server.poll() is not None or "pomelo-server: serving" in output("server"))
    if not check(started and server.poll() is None, "server started:\n" + output("server") + output("server", "err")):
        raise SystemExit(1)
    out = output("server")
    url = re.search(r"metrics at (http://\S+)", out).group(1)
    address = re.search(r"serving (127\.0\.0\.1:\d+)", out).group(1)
    check(url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), f"--metrics PORT serves loopback: {url}")

    samples, types = scrape(url)
    check(value(samples, "pomelo_handshakes_total") == 0, "no handshakes before any client")
    check(types.get("pomelo_peer_rtt_seconds") == "histogram", f"RTT is a histogram: {types.get('pomelo_peer_rtt_seconds')}")
    for family, kind in [("pomelo_packets_received", "counter"), ("pomelo_drops", "counter"),
                         ("pomelo_peers", "gauge"), ("pomelo_worker_busy_ratio", "gauge")]:
        check(types.get(family) == kind, f"{family} is a {kind}: {types.get(family)}")

    # 20 clients, 4 payloads a second each for 40 payloads: ~10 s connected.
    clients = spawn([CLIENT, "--", "--server", address, "--key", key, "--protocol-id", PROTOCOL_ID,
                     "--clients", "20", "--payloads", "40", "--rate", "4", "--base-port", "0", "--json"], "client")

    def held():
        s, _ = scrape(url)
        return s if value(s, "pomelo_peers", state="connected") == 20 and \
            value(s, "pomelo_peer_rtt_seconds_count") == 20 else None
    samples = wait_for(held, seconds=60)
    if check(samples, "20 connected peers with RTT samples in a scrape"):
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == "pomelo_peer_rtt_seconds_bucket"))
        check(len(buckets) >= 2 and buckets[-1][0] == math.inf and buckets[-1][1] == 20,
              f"+Inf bucket holds every peer: {buckets}")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"buckets are cumulative: {buckets}")
        rtt_sum = value(samples, "pomelo_peer_rtt_seconds_sum")
        check(rtt_sum is not None and 0 < rtt_sum < 20 * 1.0, f"RTT sum of 20 loopback peers: {rtt_sum}")
        workers = label_values(samples, "pomelo_worker_peers", "worker")
        check(workers == {"0", "1"}, f"a series per worker: {workers}")
        per_worker = [value(samples, "pomelo_worker_peers", worker=w) for w in ("0", "1")]
        check(sum(per_worker) == 20 and min(per_worker) > 0, f"20 peers over both workers: {per_worker}")
        for w in ("0", "1"):
            ratio = value(samples, "pomelo_worker_busy_ratio", worker=w)
            check(ratio is not None and 0 <= ratio <= 1, f"worker {w} busy ratio within 0..1: {ratio}")
            busy = value(samples, "pomelo_worker_busy_seconds_total", worker=w)
            check(busy is not None and busy > 0, f"worker {w} was busy some time: {busy}")

    check(clients.wait(timeout=120) == 0, "the clients echoed everything:\n" + output("client") + output("client", "err"))
    report = json.loads(output("client"))
    sent, echoed = report["payloads"]["sent"], report["payloads"]["echoed"]
    check(sent == 800 and echoed == 800, f"20 x 40 payloads sent and echoed: {sent}, {echoed}")

    def settled():
        s, _ = scrape(url)
        return s if value(s, "pomelo_handshakes_total") == 20 and \
            value(s, "pomelo_peers", state="connected") == 0 and \
            value(s, "pomelo_peers", state="disconnecting") == 0 else None
    samples = wait_for(settled, seconds=30)
    if check(samples, "a scrape after the clients left: 20 handshakes, no peers"):
        expect = {
            ("pomelo_packets_received_total", "payload"): sent,
            ("pomelo_packets_sent_total", "payload"): echoed,
            ("pomelo_packets_received_total", "response"): 20,
            ("pomelo_packets_received_total", "disconnect"): 20,
        }
        for (name, kind), want in expect.items():
            got = value(samples, name, type=kind)
            check(got == want, f"{name}{{type={kind}}} == {want}: {got}")
        for name, kind in [("pomelo_packets_received_total", "request"), ("pomelo_packets_sent_total", "challenge"),
                           ("pomelo_packets_sent_total", "ping")]:
            got = value(samples, name, type=kind)
            check(got is not None and got >= 20, f"{name}{{type={kind}}} >= 20: {got}")
        check(value(samples, "pomelo_packets_sent_total", type="denied") == 0, "no DENIED")
        decrypts = value(samples, "pomelo_token_decrypts_total")
        check(decrypts is not None and decrypts >= 20, f"20 tokens decrypted at least: {decrypts}")
        check(value(samples, "pomelo_peer_rtt_seconds_count") == 0, "no peer left in the RTT histogram")
        check(value(samples, "pomelo_drops_total", layer="wire", reason="auth_failed") == 0, "no auth_failed")
        check(value(samples, "pomelo_drops_total", layer="protocol", reason="replayed") == 0, "no replays")
        layers = label_values(samples, "pomelo_drops_total", "layer")
        check(layers == {"wire", "protocol", "engine"}, f"drops of three layers: {layers}")
        engine_reasons = {dict(k[1])["reason"] for k in samples
                          if k[0] == "pomelo_drops_total" and dict(k[1])["layer"] == "engine"}
        check({"control_ring_full", "shard_ring_full", "no_mbuf"} <= engine_reasons,
              f"the engine's drop reasons are listed: {engine_reasons}")
        check(not any(dict(k[1]).get("reason") == "ok" for k in samples if k[0] == "pomelo_drops_total"),
              "'ok' is not a drop reason")
        rx = value(samples, "pomelo_port_rx_datagrams_total")
        check(rx is not None and rx >= sent + 20 * 2, f"port datagrams in cover payloads and handshakes: {rx}")
        free, total = value(samples, "pomelo_mbufs_free"), value(samples, "pomelo_mbufs_total")
        check(free is not None and total is not None and 0 < free <= total, f"mbufs {free} of {total}")

    # Another server may not take the same metrics address: one line, exit 1.
    port = int(re.search(r":(\d+)/metrics", url).group(1))
    busy = spawn(server_args(prefix + "-busy", ["--metrics", f"127.0.0.1:{port}"]), "busy")
    busy.wait(timeout=60)
    err = output("busy", "err")
    check(busy.returncode == 1 and err.count("\n") == 1 and f"--metrics 127.0.0.1:{port}: cannot listen" in err,
          f"an address in use is one line, exit 1: {busy.returncode} {err!r}")

    server.send_signal(signal.SIGTERM)
    check(server.wait(timeout=60) == 0, "SIGTERM stops the server with status 0:\n" + output("server", "err"))
    try:
        urllib.request.urlopen(url, timeout=5)
        check(False, "the endpoint is gone after the stop")
    except OSError:
        pass

    for bad, says in [("nowhere:80", "is not an address"), ("127.0.0.1", "is not an address"),
                      ("[::1]:99999", "is not an address")]:
        p = subprocess.run(server_args(prefix + "-bad", ["--metrics", bad]), capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 2 and p.stderr.count("\n") == 1 and f"--metrics: '{bad}' {says}" in p.stderr,
              f"--metrics {bad}: one line, exit 2: {p.returncode} {p.stderr!r}")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}")

print(f"metrics_test: {len(failures)} failed check(s)" if failures else "metrics_test: every check passed")
sys.exit(1 if failures else 0)
