#!/usr/bin/env bash
# The main job. Sets up (scripts/setup.sh) and runs what the project can run end to end.
# Today: the backend's token flow and the codec against the reference cipher costs.
# When the engine lands this starts pomelo-server and the load generator over net_memif.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== backend: a server key and a connect token"
build/tools/pomelo-token keygen -o "$work/server.key"
build/tools/pomelo-token mint --key "$work/server.key" --protocol-id 0x1122334455667788 --client-id 42 \
  --server 127.0.0.1:40000 --server '[::1]:40000' --timeout 10 --expire-in 300 -o "$work/token.hex"
build/tools/pomelo-token inspect --key "$work/server.key" "$work/token.hex"

echo
echo "== codec: cost of every packet type against the bare AEAD (perf/codec.sh)"
perf/codec.sh 1
