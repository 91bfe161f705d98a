#!/usr/bin/env python3
"""scripts/host-setup.sh: its dry run on this host, checked against what the host has.

  - the dry run exits 0, shows the 7 steps each with a status, and its last line counts them;
  - it changes nothing (hugepage reservations, hugetlbfs mounts, PCI drivers as before);
  - what it reports matches this host: the IOMMU groups in /sys/kernel/iommu_groups, the
    hugepages reserved, whether vfio-pci can be loaded, and a NIC that carries the host's
    traffic is refused (never faked as bindable);
  - bad arguments are one line and exit status 2.

Usage: host_setup_test.py SCRIPT
Prints each failed check and exits 1 if any failed.
"""
import glob
import os
import re
import subprocess
import sys

SCRIPT = sys.argv[1]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return ok


def run(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


def host_state():
    """What a dry run must not change."""
    pages = {p: open(p).read() for p in glob.glob("/sys/kernel/mm/hugepages/*/nr_hugepages")}
    mounts = sorted(l for l in open("/proc/mounts") if " hugetlbfs " in l)
    drivers = {d: os.path.realpath(os.path.join(d, "driver")) for d in glob.glob("/sys/bus/pci/devices/*")
               if os.path.exists(os.path.join(d, "driver"))}
    return pages, mounts, drivers


def steps_of(out):
    """{step number: its text} of the report."""
    parts = re.split(r"^== (\d)/7 .*$", out, flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


STATUS = re.compile(r"^   (OK|TO DO|ADVICE|NOT POSSIBLE HERE): ", re.M)

before = host_state()
r = run()
after = host_state()
check(r.returncode == 0, f"dry run exits 0: {r.returncode} {r.stderr!r}")
check(r.stderr == "", f"dry run writes nothing to stderr: {r.stderr!r}")
check(before == after, "the dry run changed the host (hugepages, mounts or drivers)")
out = r.stdout
check(out.startswith("host-setup: dry run (nothing is changed; --apply to act)"), f"says it is a dry run: {out[:80]!r}")
steps = steps_of(out)
check(sorted(steps) == list(range(1, 8)), f"7 steps: {sorted(steps)}")
for n, text in steps.items():
    check(STATUS.search(text) or n == 2, f"step {n} ends in a status:\n{text}")
    check("why:" in text or n == 1, f"step {n} explains why:\n{text}")
statuses = STATUS.findall(out)
last = out.strip().splitlines()[-1]
m = re.fullmatch(r"host-setup: (\d+) ok, (\d+) to do(?: \(run with --apply\))?, (\d+) advice \(manual\), "
                 r"(\d+) not possible here", last)
if check(m, f"the last line counts the statuses: {last!r}"):
    counted = [int(x) for x in m.groups()]
    found = [statuses.count(s) for s in ("OK", "TO DO", "ADVICE", "NOT POSSIBLE HERE")]
    check(counted == found, f"counts {counted} == statuses shown {found}")

# The IOMMU as this host has it.
groups = len(os.listdir("/sys/kernel/iommu_groups")) if os.path.isdir("/sys/kernel/iommu_groups") else 0
iommu = steps.get(4, "")
check(f"now: {groups} IOMMU groups" in iommu, f"IOMMU groups counted ({groups}):\n{iommu}")
if groups == 0:
    check("NOT POSSIBLE HERE: no IOMMU groups" in iommu, f"no IOMMU is shown as not possible:\n{iommu}")
    check("intel_iommu=on iommu=pt" in iommu, "the IOMMU advice names the kernel parameters")
else:
    check(f"OK: the IOMMU is on ({groups} groups)" in iommu, f"the IOMMU is on:\n{iommu}")

# Hugepages as reserved now (2M pages, the default size).
huge = steps.get(3, "")
have = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").read())
check(f"now: {have} x 2M reserved" in huge, f"{have} 2M pages reported:\n{huge}")
if have < 1024:
    check(("TO DO: reserve 1024 x 2M pages" in huge and "dpdk-hugepages.py --pagesize 2M --reserve 2G" in huge)
          or "NOT POSSIBLE HERE" in huge, f"reserving 2G is to do or not possible:\n{huge}")

# vfio-pci as this kernel has it.
vfio = steps.get(5, "")
if os.path.isdir("/sys/bus/pci/drivers/vfio-pci"):
    check("OK: vfio-pci is loaded" in vfio, f"vfio-pci loaded:\n{vfio}")
elif not os.path.isdir(f"/lib/modules/{os.uname().release}"):
    check("NOT POSSIBLE HERE: this kernel" in vfio and "has no vfio-pci module" in vfio, f"no module:\n{vfio}")

# A NIC whose interface has an address carries the host's traffic: it is never bound.
ip = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
busy = set()
for iface in set(re.findall(r"^\d+: (\S+)", ip, flags=re.M)):
    # The PCI device nearest the interface (a virtio-net interface hangs off virtioN first).
    path = os.path.realpath(f"/sys/class/net/{iface}/device")
    pci = [c for c in path.split("/") if re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d", c)]
    if os.path.exists(f"/sys/class/net/{iface}/device") and pci:
        busy.add(pci[-1])
for dev in sorted(busy):
    r = run("--device", dev)
    check(r.returncode == 0, f"dry run with --device {dev}: {r.returncode} {r.stderr!r}")
    check(re.search(rf"NOT POSSIBLE HERE: {re.escape(dev)} carries this host's traffic", r.stdout),
          f"{dev} (in use) is refused:\n{steps_of(r.stdout).get(6)}")
    check("TO DO: bind" not in r.stdout, f"{dev} is never offered for binding")
if not busy:
    print(f"note: no PCI NIC with a global address here: the in-use check did not run")

# CPU isolation advice for the CPUs asked for.
cpus = [c for c in os.listdir("/sys/devices/system/cpu") if re.fullmatch(r"cpu\d+", c)]
if len(cpus) > 1:
    r = run("--cpus", "1")
    check(r.returncode == 0 and ("isolcpus=1 nohz_full=1 rcu_nocbs=1" in r.stdout or "OK: CPUs 1 are isolated" in r.stdout),
          f"--cpus 1: isolation advice or already isolated:\n{steps_of(r.stdout).get(7)}")

# Bad arguments: one line, exit 2.
for args, says in [(["--device", "0000:ff:1f.7"], "--device: no PCI device 0000:ff:1f.7 on this host"),
                   (["--device", "eth0"], "--device: 'eth0' is not a PCI address"),
                   (["--cpus", "99999"], "--cpus: CPU 99999 does not exist"),
                   (["--cpus", "2,x"], "--cpus: '2,x' is not a CPU list"),
                   (["--pagesize", "4K"], "--pagesize: '4K' is not 2M or 1G"),
                   (["--hugepages", "1M"], "--hugepages: 1M is less than one 2M page"),
                   (["--hugepages"], "--hugepages: needs a value"),
                   (["--frobnicate"], "--frobnicate: unknown option")]:
    r = run(*args)
    check(r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and says in r.stderr,
          f"{args}: one line, exit 2: {r.returncode} {r.stderr!r}")
r = run("--help")
check(r.returncode == 0 and r.stdout.startswith("usage: scripts/host-setup.sh"), f"--help: {r.returncode}")

print(f"host_setup_test: {len(failures)} failed check(s)" if failures else "host_setup_test: every check passed")
sys.exit(1 if failures else 0)
