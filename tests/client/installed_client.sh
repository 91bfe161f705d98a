#!/usr/bin/env bash
# The installed client library as a game would use it: `meson install` into a temporary
# DESTDIR, then the plain-C echo client (tests/client/echo_client.c), README.md's C example
# ("Connect from your game client") and a C++ program built out of tree with only that tree
# on their include and library paths (pkg-config pomelo-client), and the C ones run against
# a real pomelo-server.
#
#   [CC=cc] [CXX=c++] [SANITIZE=-fsanitize=...] installed_client.sh MESON BUILD_DIR SOURCE_DIR POMELO_SERVER POMELO_TOKEN
#
# Prints one line per step; on a failure, what failed and the output that shows why; exit 1.
set -euo pipefail
meson=$1 build=$2 source=$3 server_bin=$4 token_bin=$5
CC=${CC:-cc} CXX=${CXX:-c++} SANITIZE=${SANITIZE:-}
unset LD_LIBRARY_PATH  # meson test points it into the build tree: the installed tree alone must do

work=$(mktemp -d /tmp/pomelo-installed-client.XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAILED: $1"
    shift
    for f in "$@"; do [[ -f $f ]] && { echo "--- $f"; cat "$f"; }; done
    exit 1
}

dest=$work/dest
"$meson" install -C "$build" --destdir "$dest" --no-rebuild >"$work/install.log" 2>&1 || fail "meson install" "$work/install.log"
echo "ok: meson install --destdir"

pc=$(find "$dest" -name pomelo-client.pc -print -quit)
[[ -n $pc ]] || fail "no pomelo-client.pc installed" "$work/install.log"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs pomelo-client) || fail "pkg-config --cflags --libs pomelo-client"
cflags=$(pkg-config --cflags pomelo-client) && libs=$(pkg-config --libs pomelo-client) || fail "pkg-config pomelo-client"
libdir=$(dirname "$(dirname "$pc")")  # where the .pc file and the library are
echo "ok: pkg-config pomelo-client: $flags"
for h in pomelo/pomelo.h pomelo/client.hpp; do
    [[ -n $(find "$dest" -path "*/include/$h" -print -quit) ]] || fail "$h is not installed"
done
if find "$dest" -path '*/include/*' \( -path '*/protocol/*' -o -path '*/client/*' \) | grep -q .; then
    fail "internal headers installed: $(find "$dest" -path '*/include/*' \( -path '*/protocol/*' -o -path '*/client/*' \))"
fi
echo "ok: public headers installed, no internal ones"

# Out of tree: only the installed tree (no -I into the source, no build directory).
cp "$source/tests/client/echo_client.c" "$work/"
# Compiled as C11 by the C compiler; linked by it too, or under sanitizers by the C++ driver (a
# sanitized C++ library needs the C++ part of UBSan's runtime, which a C link leaves out).
LINK=$CC
[ -n "$SANITIZE" ] && LINK=$CXX
cc_build() {  # SOURCE OUTPUT LOG
    (cd "$work" && $CC $SANITIZE -std=c11 -pedantic-errors -Wall -Wextra -Werror -c "$1" $cflags -o "$2.o" &&
        $LINK $SANITIZE "$2.o" $libs -Wl,-rpath,"$libdir" -o "$2") >"$3" 2>&1
}
cc_build echo_client.c echo_client "$work/cc.log" || fail "cc -std=c11 -pedantic-errors echo_client.c" "$work/cc.log"
awk '/^## Connect from your game client/ { in_section = 1 } in_section && /^```c$/ { in_code = 1; next }
     in_code && /^```$/ { exit } in_code { print }' "$source/README.md" >"$work/hello.c"
[[ -s $work/hello.c ]] || fail "no C example in README.md's 'Connect from your game client'"
cc_build hello.c hello "$work/cc-hello.log" || fail "cc README.md's example" "$work/cc-hello.log"
echo "ok: plain C11 clients (echo_client.c, README.md's example) built against the installed tree"
cat >"$work/game.cpp" <<'EOF'
#include <pomelo/client.hpp>
int main() {
    pomelo::UdpClient c;
    return c.state() == pomelo::ClientState::disconnected && c.outcome() == pomelo::ClientOutcome::none ? 0 : 1;
}
EOF
(cd "$work" && $CXX $SANITIZE -std=c++20 -Wall -Wextra -Werror game.cpp $flags -Wl,-rpath,"$libdir" -o game && ./game) \
    >"$work/cxx.log" 2>&1 || fail "C++ program on pomelo/client.hpp" "$work/cxx.log"
echo "ok: C++20 program built against the installed tree and run"
if ldd "$work/echo_client" | grep -Eiq 'IPSec_MB|rte_|dpdk'; then fail "the client links DPDK or IPsec-MB: $(ldd "$work/echo_client")"; fi
ldd "$work/echo_client" | grep -q "$dest" || fail "the client does not load the installed libpomelo-client: $(ldd "$work/echo_client")"
echo "ok: linked with the installed libpomelo-client, no DPDK, no IPsec-MB"

# Against a real server (kernel UDP on 127.0.0.1, a port the kernel picks).
"$token_bin" keygen -o "$work/server.key" >/dev/null
"$server_bin" --no-huge --no-pci -m 256 --file-prefix "pomelo-installed-client-$$" --log-level error -- \
    --driver socket --bind 127.0.0.1:0 --protocol-id 0x1c --key "$work/server.key" \
    --token-journal "$work/journal" --stats-interval 0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 300); do
    grep -q 'pomelo-server: serving' "$work/server.out" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
address=$(sed -n 's/^pomelo-server: serving \([^ ]*\) on .*/\1/p' "$work/server.out")
[[ -n $address ]] || fail "pomelo-server did not start" "$work/server.out" "$work/server.err"
"$token_bin" mint --key "$work/server.key" --protocol-id 0x1c --client-id 9 --server "$address" \
    --format bin -o "$work/token.bin" || fail "pomelo-token mint"
"$work/echo_client" "$work/token.bin" 300 200 >"$work/client.out" 2>&1 || fail "echo_client against $address" "$work/client.out"
grep -q 'echoed: 300 payloads of 200 bytes, byte for byte' "$work/client.out" || fail "no echo line" "$work/client.out"
echo "ok: installed C client echoed 300 payloads through pomelo-server at $address"
"$token_bin" mint --key "$work/server.key" --protocol-id 0x1c --client-id 10 --server "$address" \
    --format bin -o "$work/token2.bin" || fail "pomelo-token mint"
"$work/hello" "$work/token2.bin" >"$work/hello.out" 2>&1 || fail "README.md's example against $address" "$work/hello.out"
grep -q '^got hello, rtt ' "$work/hello.out" && grep -q '^ended: disconnected$' "$work/hello.out" ||
    fail "README.md's example did not get its echo" "$work/hello.out"
echo "ok: README.md's example got its echo and disconnected"
kill -TERM "$server_pid"
wait "$server_pid" || fail "pomelo-server exit status $?" "$work/server.out" "$work/server.err"
server_pid=
grep -q 'stopped; 2 connections served' "$work/server.out" || fail "the server did not serve the client" "$work/server.out"
echo "ok: every step"
