#!/usr/bin/env python3
"""dist/pomelo-server.service: systemd-analyze verify, and its ExecStart run as systemd would.

  - `systemd-analyze verify` finds nothing to say about the unit (its ExecStart pointed at the
    built pomelo-server: verify wants an existing binary), and does complain about a copy with
    an unknown directive (so its silence means something here);
  - the unit restarts on failure (not on a bad configuration, exit 2), stops with SIGTERM and
    waits longer than the server's 2 s of shutdown grace, keeps a StateDirectory;
  - the unit's command line, with its default EAL arguments and dist/pomelo-server.conf (the
    key, endpoint, driver and metrics address changed for this host), serves two clients;
    its token journal lands in $STATE_DIRECTORY; SIGTERM (KillSignal) drains: both clients
    end "disconnected by server" and the server exits 0 within TimeoutStopSec.

Usage: systemd_unit_test.py SOURCE_ROOT SERVER CLIENT TOKEN
Prints each failed check and exits 1 if any failed.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT, SERVER, CLIENT, TOKEN = sys.argv[1:5]
UNIT = os.path.join(ROOT, "dist", "pomelo-server.service")
CONF = os.path.join(ROOT, "dist", "pomelo-server.conf")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return ok


def wait_for(pred, seconds=30.0, step=0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def directives(text):
    """[(key, value)] of the unit's [Service] section, in order."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            k, _, v = line.partition("=")
            out.append((k, v))
    return out


work = tempfile.mkdtemp(prefix="pomelo-unit-test-")
procs = []
try:
    text = open(UNIT).read()
    exec_start = re.search(r"^ExecStart=(\S+)", text, flags=re.M).group(1)
    check(exec_start == "/usr/local/bin/pomelo-server", f"ExecStart names the installed binary: {exec_start}")

    # 1. systemd-analyze verify, silent on the unit, loud on a broken copy.
    unit = os.path.join(work, "pomelo-server.service")
    open(unit, "w").write(text.replace(exec_start, os.path.abspath(SERVER)))
    v = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=120)
    check(v.returncode == 0 and v.stdout.strip() == "" and v.stderr.strip() == "",
          f"systemd-analyze verify is silent: {v.returncode} {v.stdout!r} {v.stderr!r}")
    broken = os.path.join(work, "broken", "pomelo-server.service")
    os.makedirs(os.path.dirname(broken))
    open(broken, "w").write(text.replace(exec_start, os.path.abspath(SERVER)).replace("KillSignal=", "KillSignall="))
    v = subprocess.run(["systemd-analyze", "verify", broken], capture_output=True, text=True, timeout=120)
    check("Unknown key 'KillSignall'" in v.stderr, f"verify reports an unknown directive here: {v.stderr!r}")

    # 2. What the unit promises.
    service = dict(directives(text))
    check(service.get("Restart") == "on-failure", f"Restart=on-failure: {service.get('Restart')}")
    check(service.get("RestartPreventExitStatus") == "2", "no restart after a bad configuration (exit 2)")
    check(service.get("KillSignal") == "SIGTERM", f"KillSignal=SIGTERM: {service.get('KillSignal')}")
    stop = re.fullmatch(r"(\d+)s", service.get("TimeoutStopSec", ""))
    check(stop and int(stop.group(1)) > 2, f"TimeoutStopSec above the 2 s grace: {service.get('TimeoutStopSec')}")
    check(service.get("StateDirectory") == "pomelo-engine", f"StateDirectory: {service.get('StateDirectory')}")
    for absent in ("PrivateDevices", "ProtectKernelTunables", "ProtectClock", "MemoryDenyWriteExecute"):
        check(absent not in service, f"{absent} would break DPDK (/dev/vfio, /sys): not set")

    # 3. The unit's command line, run as systemd would run it.
    key = os.path.join(work, "server.key")
    subprocess.run([TOKEN, "keygen", "-o", key], check=True, stdout=subprocess.DEVNULL)
    conf = open(CONF).read()
    for option, value in [("bind", "127.0.0.1:0"), ("key", key), ("driver", "socket"), ("workers", "1"),
                          ("metrics", "127.0.0.1:0")]:
        conf, n = re.subn(rf"^{option} = .*$", f"{option} = {value}", conf, flags=re.M)
        check(n == 1, f"dist/pomelo-server.conf sets {option}")
    conf_path = os.path.join(work, "pomelo-server.conf")
    open(conf_path, "w").write(conf)
    eal = shlex.split(re.search(r'^Environment="POMELO_EAL_ARGS=(.*)"$', text, flags=re.M).group(1))
    prefix = f"pomelo-unit-test-{os.getpid()}"
    eal[eal.index("--file-prefix") + 1] = prefix
    command = service["ExecStart"].split()
    i = command.index("$POMELO_EAL_ARGS")
    command = [os.path.abspath(SERVER)] + command[1:i] + eal + command[i + 1:]
    command[command.index("/etc/pomelo/pomelo-server.conf")] = conf_path
    state = os.path.join(work, "state")
    os.makedirs(state, mode=0o700)
    env = dict(os.environ, STATE_DIRECTORY=state)
    out_path = os.path.join(work, "server.out")
    server = subprocess.Popen(command, stdout=open(out_path, "w"), stderr=subprocess.STDOUT, env=env)
    procs.append(server)
    started = wait_for(lambda: server.poll() is not None or "pomelo-server: serving" in open(out_path).read())
    out = open(out_path).read()
    if not check(started and server.poll() is None, f"the unit's command line serves:\n{out}"):
        raise SystemExit(1)
    address = re.search(r"serving (127\.0\.0\.1:\d+)", out).group(1)
    url = re.search(r"metrics at (http://\S+)", out).group(1)
    protocol_id = re.search(r"^protocol-id = (\S+)", conf, flags=re.M).group(1)
    client_out = os.path.join(work, "client.out")
    client = subprocess.Popen([CLIENT, "--", "--server", address, "--key", key, "--protocol-id", protocol_id,
                               "--clients", "2", "--payloads", "600", "--rate", "5", "--duration", "120",
                               "--base-port", "0", "--json", "--quiet"],
                              stdout=open(client_out, "w"), stderr=subprocess.STDOUT)
    procs.append(client)

    def connected():
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            return False
        return re.search(r'^pomelo_peers\{state="connected"\} 2$', text, flags=re.M)
    check(wait_for(connected, seconds=60), "two clients connected (pomelo_peers over --metrics)")
    name = address.replace(":", "_")
    journals = [f for f in os.listdir(state) if re.fullmatch(rf"tokens-[0-9a-f]{{8}}-{re.escape(name)}", f)]
    check(len(journals) == 1, f"the token journal is in $STATE_DIRECTORY: {os.listdir(state)}")
    if journals:
        check(os.path.getsize(os.path.join(state, journals[0])) == 2 * 24, "it holds the two clients' tokens")

    # KillSignal: SIGTERM drains within TimeoutStopSec.
    stopped_at = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        rc = server.wait(timeout=int(stop.group(1)) if stop else 15)
        check(rc == 0, f"SIGTERM: exit status 0: {rc}\n{open(out_path).read()}")
    except subprocess.TimeoutExpired:
        check(False, f"SIGTERM: the server did not stop within TimeoutStopSec")
    client.wait(timeout=60)
    report = json.loads(open(client_out).read() or "{}")
    ended = report.get("clients", {}).get("ended_by_outcome", {})
    check(ended.get("disconnected_by_server") == 2, f"both clients were told (DISCONNECT): {ended}")
    print(f"stopped in {time.monotonic() - stopped_at:.1f} s")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"files kept in {work}")

print(f"systemd_unit_test: {len(failures)} failed check(s)" if failures else "systemd_unit_test: every check passed")
sys.exit(1 if failures else 0)
