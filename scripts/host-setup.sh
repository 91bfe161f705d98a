#!/usr/bin/env bash
# Prepares a bare-metal host for pomelo-server on a DPDK NIC, step by step: each step says
# why it matters, what the host has now, and what would change. A dry run by default: it only
# reads. With --apply it does the steps that can be done at runtime (hugepages, loading
# vfio-pci, binding the NICs given with --device); boot-time settings (IOMMU, CPU isolation)
# are never edited, only explained. What this host cannot do (no IOMMU, no spare NIC, ...) is
# reported as such, never faked.
#
#   scripts/host-setup.sh [--apply] [--hugepages SIZE] [--pagesize 2M|1G] [--device PCI]... [--cpus LIST]
#
# Each step ends in one status: OK (nothing to do), TO DO (--apply does it), ADVICE (a manual
# change, shown), NOT POSSIBLE HERE (why). The last line counts them. Exit status: 0, also for
# a dry run that found work; 1 when --apply could not do a step it was asked to (or a step is
# not possible); 2 for bad arguments (one line).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: scripts/host-setup.sh [--apply] [--hugepages SIZE] [--pagesize 2M|1G] [--device PCI]... [--cpus LIST]

Checks (and with --apply, prepares) a host for pomelo-server on a DPDK NIC:
  1. tools: dpdk-devbind.py and dpdk-hugepages.py (Debian package dpdk), root for --apply
  2. CPUs and NUMA nodes
  3. hugepages: SIZE of --pagesize pages reserved, hugetlbfs mounted
  4. IOMMU: vfio-pci needs one (VT-d / AMD-Vi enabled, intel_iommu=on or amd_iommu=on)
  5. the vfio-pci kernel module
  6. NICs: each --device bound to vfio-pci with dpdk-devbind.py (never one the host uses)
  7. CPU isolation for the worker lcores: isolcpus / nohz_full / rcu_nocbs advice

  --apply          do what can be done now (default: a dry run that changes nothing)
  --hugepages SIZE memory to reserve in hugepages, e.g. 2G or 512M (default 2G)
  --pagesize SIZE  2M or 1G (default 2M)
  --device PCI     a NIC to give to DPDK, e.g. 0000:3b:00.0 (repeatable; default none: the
                   candidates are listed)
  --cpus LIST      CPUs for the worker lcores, e.g. 2-7 or 2,4,6 (default: every CPU but 0,
                   which keeps the control thread and the system)
EOF
}

die_usage() { echo "host-setup: $1" >&2; exit 2; }

apply=0
hugepages=2G
pagesize=2M
devices=()
cpus=""
while (($#)); do
  case "$1" in
    --apply) apply=1 ;;
    --hugepages) [ $# -ge 2 ] || die_usage "--hugepages: needs a value"; hugepages="$2"; shift ;;
    --pagesize) [ $# -ge 2 ] || die_usage "--pagesize: needs a value"; pagesize="$2"; shift ;;
    --device) [ $# -ge 2 ] || die_usage "--device: needs a value"; devices+=("$2"); shift ;;
    --cpus) [ $# -ge 2 ] || die_usage "--cpus: needs a value"; cpus="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "$1: unknown option (see --help)" ;;
  esac
  shift
done

# ---------------------------------------------------------------- arguments

case "$pagesize" in
  2M) page_kb=2048 ;;
  1G) page_kb=1048576 ;;
  *) die_usage "--pagesize: '$pagesize' is not 2M or 1G" ;;
esac
if [[ "$hugepages" =~ ^([0-9]+)([MG])$ ]]; then
  unit_kb=1024
  [ "${BASH_REMATCH[2]}" = G ] && unit_kb=1048576
  want_kb=$((BASH_REMATCH[1] * unit_kb))
else
  die_usage "--hugepages: '$hugepages' is not a size like 2G or 512M"
fi
((want_kb >= page_kb)) || die_usage "--hugepages: $hugepages is less than one $pagesize page"
want_pages=$(((want_kb + page_kb - 1) / page_kb))

# A CPU list (2-7,9) as one CPU number a line; empty output for a malformed list.
expand_cpus() {
  local part a b
  IFS=',' read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=${BASH_REMATCH[1]}; b=${BASH_REMATCH[2]}
      ((a <= b)) || return 1
      seq "$a" "$b"
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      echo "$part"
    else
      return 1
    fi
  done
}
online=$(cat /sys/devices/system/cpu/online 2>/dev/null || echo 0)
mapfile -t online_cpus < <(expand_cpus "$online")
if [ -z "$cpus" ]; then
  others=()
  for c in "${online_cpus[@]}"; do [ "$c" -ne 0 ] && others+=("$c"); done
  cpus=$(IFS=,; echo "${others[*]}")
else
  [[ "$cpus" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die_usage "--cpus: '$cpus' is not a CPU list like 2-7 or 2,4,6"
  mapfile -t wanted < <(expand_cpus "$cpus")
  ((${#wanted[@]})) || die_usage "--cpus: '$cpus' is not a CPU list like 2-7 or 2,4,6 (a range runs upwards)"
  for c in "${wanted[@]}"; do
    [ -d "/sys/devices/system/cpu/cpu$c" ] || die_usage "--cpus: CPU $c does not exist on this host (online: $online)"
  done
fi
for d in "${devices[@]}"; do
  [[ "$d" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]] ||
    die_usage "--device: '$d' is not a PCI address like 0000:3b:00.0"
  [ -e "/sys/bus/pci/devices/$d" ] || die_usage "--device: no PCI device $d on this host"
done

# ---------------------------------------------------------------- reporting

n_ok=0 n_todo=0 n_advice=0 n_impossible=0 n_failed=0
step_no=0
step() { step_no=$((step_no + 1)); echo; echo "== $step_no/7 $1"; }
say() { echo "   $*"; }
ok() { n_ok=$((n_ok + 1)); say "OK: $*"; }
advice() { n_advice=$((n_advice + 1)); say "ADVICE: $*"; }
impossible() { n_impossible=$((n_impossible + 1)); say "NOT POSSIBLE HERE: $*"; }
# todo "what" command...: a dry run shows the command; --apply runs it and reports.
todo() {
  local what="$1"; shift
  if ((apply == 0)); then
    n_todo=$((n_todo + 1))
    say "TO DO: $what"
    say "   --apply runs: $*"
    return 0
  fi
  say "doing: $what: $*"
  if "$@"; then
    n_ok=$((n_ok + 1)); say "OK: done"
    return 0
  fi
  n_failed=$((n_failed + 1)); say "FAILED: $what ($* exited non-zero)"
  return 1
}

echo "host-setup: $( ((apply)) && echo "applying" || echo "dry run (nothing is changed; --apply to act)") on $(uname -n), kernel $(uname -r)"

# ---------------------------------------------------------------- 1. tools

step "tools and privileges"
say "why: dpdk-devbind.py binds NICs to vfio-pci, dpdk-hugepages.py reserves hugepages (Debian: dpdk)"
tools_ok=1
for t in dpdk-devbind.py dpdk-hugepages.py; do
  if command -v "$t" >/dev/null; then say "found $(command -v "$t")"; else tools_ok=0; say "missing $t"; fi
done
if ((tools_ok)); then ok "DPDK's tools are installed"
elif todo "install DPDK's tools" apt-get install -y dpdk && ((apply)); then tools_ok=1; fi
asked_apply=$apply
if [ "$(id -u)" -eq 0 ]; then say "running as root"
elif ((apply)); then impossible "--apply needs root (sysfs writes, module loading, driver binding): the rest is a dry run"; apply=0
else say "not root: fine for a dry run, --apply needs root"; fi

# ---------------------------------------------------------------- 2. CPUs and NUMA

step "CPUs and NUMA nodes"
say "why: a worker lcore polls without sleeping, so it wants a CPU of its own; its NIC, mbufs"
say "     and rings belong on the same NUMA node (EAL --socket-mem, -l)"
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
say "CPUs online: $online; NUMA nodes: $nodes"
for n in /sys/devices/system/node/node[0-9]*; do
  [ -e "$n/cpulist" ] && say "  $(basename "$n"): CPUs $(cat "$n/cpulist")"
done
ok "the worker CPUs chosen: ${cpus:-none} (CPU 0 keeps the control thread)"

# ---------------------------------------------------------------- 3. hugepages

step "hugepages ($hugepages in $pagesize pages: $want_pages pages)"
say "why: DPDK allocates mbuf pools and rings in hugepages (no TLB misses, memory that is"
say "     never swapped); without them only --no-huge runs, for tests"
pool="/sys/kernel/mm/hugepages/hugepages-${page_kb}kB"
mounted=$(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts | head -n 1)
if [ ! -d "$pool" ]; then
  impossible "$pagesize pages are not supported by this CPU or kernel (no $pool)"
else
  have=$(cat "$pool/nr_hugepages")
  free_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  say "now: $have x $pagesize reserved ($(cat "$pool/free_hugepages") free), hugetlbfs ${mounted:+mounted at $mounted}${mounted:-not mounted}"
  if ((have >= want_pages)) && [ -n "$mounted" ]; then
    ok "$have pages reserved and mounted"
  elif ((have < want_pages)) && (((want_pages - have) * page_kb > free_kb)); then
    impossible "$((want_pages - have)) more pages need $(((want_pages - have) * page_kb / 1024)) MiB, $((free_kb / 1024)) MiB available"
  elif ((have < want_pages)) && [ ! -w "$pool/nr_hugepages" ] && [ "$(id -u)" -eq 0 ]; then
    impossible "$pool/nr_hugepages is read-only here (a container?)"
  else
    ((have < want_pages)) && todo "reserve $want_pages x $pagesize pages" dpdk-hugepages.py --pagesize "$pagesize" --reserve "$hugepages"
    [ -z "$mounted" ] && todo "mount hugetlbfs at /dev/hugepages" dpdk-hugepages.py --pagesize "$pagesize" --mount
  fi
  advice "to keep them across reboots, add to the kernel command line: hugepagesz=$pagesize hugepages=$want_pages$([ "$pagesize" = 1G ] && echo " default_hugepagesz=1G") (1G pages are best reserved at boot, before memory fragments)"
fi

# ---------------------------------------------------------------- 4. IOMMU

step "IOMMU"
say "why: vfio-pci gives the NIC to a user process safely only behind an IOMMU (the device can"
say "     then reach no memory but the process's); it needs VT-d / AMD-Vi in the firmware"
groups=$(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)
iommu_args=$(grep -oE '(intel_iommu|amd_iommu|iommu)=[^ ]+' /proc/cmdline | tr '\n' ' ')
say "now: $groups IOMMU groups; IOMMU options on the kernel command line: ${iommu_args:-none}"
iommu_ok=0
if ((groups > 0)); then
  iommu_ok=1
  ok "the IOMMU is on ($groups groups)"
else
  if [ -e /sys/class/dmi/id/sys_vendor ] && grep -qiE 'qemu|kvm|vmware|xen|microsoft|firecracker|amazon' /sys/class/dmi/id/sys_vendor 2>/dev/null \
     || grep -q hypervisor /proc/cpuinfo; then
    impossible "no IOMMU groups: this is a virtual machine whose hypervisor exposes no (virtual) IOMMU"
  else
    impossible "no IOMMU groups: the IOMMU is off in the firmware or on the kernel command line"
  fi
  advice "enable VT-d (Intel) or AMD-Vi (AMD) in the firmware, add 'intel_iommu=on iommu=pt' (Intel) or 'amd_iommu=on iommu=pt' (AMD) to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot (vfio's enable_unsafe_noiommu_mode works without one, but lets the NIC write anywhere in memory: not set by this script)"
fi

# ---------------------------------------------------------------- 5. vfio-pci

step "the vfio-pci module"
say "why: the kernel driver that hands a PCI device to a DPDK process (uio drivers are not needed)"
vfio_ok=0
if [ -d /sys/bus/pci/drivers/vfio-pci ]; then
  vfio_ok=1
  ok "vfio-pci is loaded"
elif find "/lib/modules/$(uname -r)" -name 'vfio-pci.ko*' 2>/dev/null | grep -q .; then
  if grep -qw nomodule /proc/cmdline; then
    impossible "the kernel was booted with 'nomodule': no module can be loaded"
  elif todo "load vfio-pci" modprobe vfio-pci; then
    ((apply)) && vfio_ok=1
  fi
  advice "to load it at every boot: echo vfio-pci > /etc/modules-load.d/vfio-pci.conf"
else
  impossible "this kernel ($(uname -r)) has no vfio-pci module (nothing under /lib/modules/$(uname -r))"
fi

# ---------------------------------------------------------------- 6. NICs

step "NICs for DPDK"
say "why: a NIC bound to vfio-pci leaves the kernel: pomelo-server's workers poll it directly."
say "     Never bind the NIC this host is reached by: it would go offline"
status=""
((tools_ok)) && status=$(dpdk-devbind.py --status-dev net 2>/dev/null)
# Devices as dpdk-devbind.py lists them: "0000:00:03.0 'name' if=eth0 drv=virtio-pci unused= *Active*".
mapfile -t nic_lines < <(grep -E '^[0-9a-fA-F]{4}:' <<<"$status")
if ((${#nic_lines[@]} == 0)); then
  say "no network PCI devices found"
fi
for l in "${nic_lines[@]}"; do say "  $l"; done
in_use() {  # the kernel interface of a device carries an address, or dpdk-devbind calls it Active
  grep -E "^$1 " <<<"$status" | grep -q '\*Active\*'
}
if ((${#devices[@]} == 0)); then
  candidates=()
  for l in "${nic_lines[@]}"; do
    dev=${l%% *}
    in_use "$dev" || candidates+=("$dev")
  done
  if ((${#nic_lines[@]} == 0)); then
    impossible "no NIC to give to DPDK on this host"
  elif ((${#candidates[@]} == 0)); then
    impossible "every NIC here carries this host's own traffic (Active): none can be given to DPDK"
  else
    advice "no --device given; NICs the host does not use: ${candidates[*]} (rerun with --device PCI)"
  fi
fi
for dev in "${devices[@]}"; do
  line=$(grep -E "^$dev " <<<"$status" || true)
  if [ -z "$line" ]; then
    impossible "$dev is not a network device dpdk-devbind.py knows"
  elif grep -q 'drv=vfio-pci' <<<"$line"; then
    ok "$dev is bound to vfio-pci"
  elif in_use "$dev"; then
    impossible "$dev carries this host's traffic ($(grep -oE 'if=[^ ]+' <<<"$line")): binding it would cut the host off"
  elif ((iommu_ok == 0)); then
    impossible "$dev cannot be bound to vfio-pci without an IOMMU (step 4)"
  elif ((vfio_ok == 0)) && ((apply)); then
    impossible "$dev cannot be bound: vfio-pci is not loaded (step 5)"
  else
    todo "bind $dev to vfio-pci" dpdk-devbind.py --bind=vfio-pci "$dev"
  fi
done

# ---------------------------------------------------------------- 7. CPU isolation

step "CPU isolation for the worker lcores (${cpus:-none})"
say "why: a polling worker loses packets whenever the scheduler, timer ticks or RCU callbacks"
say "     take its CPU: isolcpus keeps tasks off, nohz_full stops the tick, rcu_nocbs moves"
say "     RCU callbacks away"
isolated=$(cat /sys/devices/system/cpu/isolated 2>/dev/null)
nohz=$(cat /sys/devices/system/cpu/nohz_full 2>/dev/null || echo "")
say "now: isolated: ${isolated:-none}; nohz_full: ${nohz:-none}"
if [ -z "$cpus" ]; then
  impossible "this host has a single CPU: nothing to isolate (workers share CPU 0 with the control thread)"
elif [ "$(expand_cpus "${isolated:-x}" 2>/dev/null | sort -n)" = "$(expand_cpus "$cpus" | sort -n)" ]; then
  ok "CPUs $cpus are isolated"
else
  advice "add 'isolcpus=$cpus nohz_full=$cpus rcu_nocbs=$cpus' to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot (boot configuration: this script never edits it)"
  advice "keep interrupts off them: IRQBALANCE_BANNED_CPULIST=$cpus in /etc/default/irqbalance"
fi
say "then: pomelo-server -l 0,$cpus -a <PCI> -- --workers $(expand_cpus "$cpus" 2>/dev/null | wc -l) ... (control thread on CPU 0)"

echo
echo "host-setup: $n_ok ok, $n_todo to do$( ((n_todo)) && echo " (run with --apply)"), $n_advice advice (manual), $n_impossible not possible here$( ((n_failed)) && echo ", $n_failed failed")"
if ((asked_apply)) && ((n_failed || n_impossible)); then exit 1; fi
exit 0
