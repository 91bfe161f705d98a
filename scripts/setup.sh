#!/usr/bin/env bash
# Installs every dependency from Debian packages and builds build/.
# Idempotent: when everything is installed and built, a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  g++ clang llvm libclang-rt-14-dev          # compilers; clang for libFuzzer and sanitizers
  meson ninja-build pkg-config python3
  libdpdk-dev dpdk                           # DPDK 22.11 (headers, PMDs, dpdk-telemetry.py)
  libsodium-dev libipsec-mb-dev              # crypto
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  prometheus-cpp-dev python3-prometheus-client  # pomelo-server --metrics, and its test's parser
  iproute2 ethtool                           # network namespaces and veth offloads for the veth tests
  linux-perf valgrind                        # perf/profile.sh: sampling profiles, callgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=debugoptimized
fi
ninja -C build
echo "setup: build/ is ready"
