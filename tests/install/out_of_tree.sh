#!/bin/bash
# The installed tree is enough to build and run a game server and a game client:
#   1. `meson install --destdir TMP` of this build;
#   2. the headers installed are exactly include/pomelo/installed-headers.txt, each compiles
#      alone with nothing but the installed tree, and none names an internal header;
#   3. tests/install/game_server.cpp (shown verbatim in README.md), copied to a directory of its own, builds with
#      `pkg-config --cflags --libs pomelo-engine` (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR
#      on the DESTDIR tree) and loads libpomelo-engine.so from there;
#   4. it serves real clients: the installed pomelo-client connects 8 clients over kernel UDP on
#      127.0.0.1 and checks every echo; the server reports their round trips, disconnects and
#      stops cleanly on SIGTERM, leaving no DPDK runtime directory;
#   5. a game client in plain C (tests/client/echo_client.c, -std=c11 -pedantic-errors) builds
#      against the installed pomelo.h and libpomelo-client alone and echoes 100 payloads off it.
#
# usage: out_of_tree.sh BUILD_DIR SOURCE_DIR CXX [CXX args...]
set -u
# meson points LD_LIBRARY_PATH at the build tree's library for tests: only the installed one counts.
unset LD_LIBRARY_PATH
build=$1 src=$2
shift 2
cxx=("$@")
# A build with -Db_sanitize=...: the application links the sanitizer runtime the library calls.
app_flags=()
[ -n "${POMELO_SANITIZE:-}" ] && [ "$POMELO_SANITIZE" != none ] && app_flags=(-fsanitize="$POMELO_SANITIZE")

tmp=$(mktemp -d /tmp/pomelo-install-XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
    done
    exit 1
}

# 1. install
dest=$tmp/dest
meson install -C "$build" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1 || fail "meson install failed"
pc=$(find "$dest" -name pomelo-engine.pc)
[ -n "$pc" ] || fail "no pomelo-engine.pc installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
bindir=$(find "$dest" -type d -name bin | head -n 1)
[ -x "$bindir/pomelo-client" ] && [ -x "$bindir/pomelo-token" ] || fail "pomelo-client / pomelo-token not installed in $bindir"
[ -e "$libdir/libpomelo-engine.so" ] || fail "libpomelo-engine.so not installed in $libdir"
echo "installed into $dest: $(cd "$dest" && find . -type f | wc -l) files"

# 2. the public headers, exactly
incdir=$(find "$dest" -type d -path '*/include/pomelo' | head -n 1)
[ -n "$incdir" ] || fail "no include/pomelo installed"
installed=$(cd "$incdir/.." && find . -type f -o -type l | sed 's|^\./||' | sort)
expected=$(grep -v '^#' "$src/include/pomelo/installed-headers.txt" | sort)
if [ "$installed" != "$expected" ]; then
    diff <(echo "$expected") <(echo "$installed") >"$tmp/headers.log"
    fail "installed headers differ from include/pomelo/installed-headers.txt (< listed, > installed)"
fi
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
cflags=$(pkg-config --cflags pomelo-engine) || fail "pkg-config --cflags pomelo-engine"
libs=$(pkg-config --libs pomelo-engine) || fail "pkg-config --libs pomelo-engine"
echo "pkg-config: $cflags $libs"
case "$cflags $libs" in *dpdk*|*rte_*) fail "pkg-config exposes DPDK to applications: $cflags $libs" ;; esac
for h in $expected; do
    if grep -n '#include "\|#include <rte_\|#include <sodium\|#include <intel-ipsec' "$incdir/../$h" >"$tmp/include.log"; then
        fail "$h includes a non-public header"
    fi
    echo "#include <$h>" | "${cxx[@]}" -std=c++20 -Wall -Wextra -Werror -fsyntax-only $cflags -x c++ - \
        2>"$tmp/header.err" || fail "$h does not compile alone from the installed tree"
done
echo "headers: $(echo $expected)"

# 3. build the game server out of tree (README's "Build your game server" shows this file)
python3 -c 'import sys; sys.exit(open(sys.argv[1]).read() not in open(sys.argv[2]).read())' \
    "$src/tests/install/game_server.cpp" "$src/README.md" || fail "README.md does not show tests/install/game_server.cpp as it is"
mkdir "$tmp/game"
cp "$src/tests/install/game_server.cpp" "$tmp/game/"
(cd "$tmp/game" && "${cxx[@]}" -std=c++20 -Wall -Wextra -Werror "${app_flags[@]}" game_server.cpp $cflags $libs \
    -Wl,-rpath,"$libdir" -o game_server) >"$tmp/compile.log" 2>&1 || fail "game_server.cpp does not build"
ldd "$tmp/game/game_server" >"$tmp/ldd.log"
grep -q "libpomelo-engine.so.* => $libdir/" "$tmp/ldd.log" || fail "game_server does not load libpomelo-engine.so from $libdir"
echo "built $tmp/game/game_server"

# 4. run it, talk to it
"$bindir/pomelo-token" keygen -o "$tmp/server.key" >"$tmp/keygen.log" 2>&1 || fail "pomelo-token keygen"
port=$((42000 + $$ % 2000))
"$tmp/game/game_server" "$tmp/server.key" "127.0.0.1:$port" "$tmp/journal" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 300); do
    grep -q "game_server: serving" "$tmp/server.out" && break
    kill -0 "$server_pid" 2>/dev/null || fail "game_server exited"
    sleep 0.1
done
grep -q "game_server: serving 127.0.0.1:$port with 2 workers" "$tmp/server.out" || fail "game_server did not start"
LD_LIBRARY_PATH="$libdir" "$bindir/pomelo-client" -- --server "127.0.0.1:$port" --key "$tmp/server.key" --protocol-id 0x6a6d \
    --clients 8 --payloads 100 --rate 40 --json >"$tmp/client.out" 2>"$tmp/client.err" ||
    fail "pomelo-client failed (exit $?)"
python3 - "$tmp/client.out" <<'EOF' || fail "the client's summary is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
checks = [(r["clients"]["connected"], 8), (r["payloads"]["echoed"], 800), (r["payloads"]["mismatched"], 0),
          (r["clients"]["ended_by_outcome"]["disconnected"], 8)]
bad = [c for c in checks if c[0] != c[1]]
if bad:
    print("client summary: got/want", bad)
    sys.exit(1)
EOF
# 5. a plain-C game client, built in a directory of its own against the installed tree alone
#    (pomelo.h, libpomelo-client), talks to the out-of-tree server.
cc_bin=${cxx[0]}
case "$cc_bin" in *clang++*) cc_bin=${cc_bin/clang++/clang} ;; *g++*) cc_bin=${cc_bin/g++/gcc} ;; *c++*) cc_bin=${cc_bin/c++/cc} ;; esac
ccflags=$(pkg-config --cflags pomelo-client) && cclibs=$(pkg-config --libs pomelo-client) || fail "pkg-config pomelo-client"
mkdir -p "$tmp/cgame"
cp "$src/tests/client/echo_client.c" "$tmp/cgame/"
# Compiled as C11; linked by the C compiler, or under sanitizers by the C++ driver (a sanitized
# C++ library needs the C++ part of UBSan's runtime, which a C link leaves out).
linker=$cc_bin
[ ${#app_flags[@]} -gt 0 ] && linker=${cxx[0]}
(cd "$tmp/cgame" && "$cc_bin" -std=c11 -pedantic-errors -Wall -Wextra -Werror "${app_flags[@]}" -c echo_client.c $ccflags \
    -o echo_client.o && "$linker" "${app_flags[@]}" echo_client.o $cclibs -Wl,-rpath,"$libdir" -o echo_client) \
    >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; fail "echo_client.c does not build with -std=c11 -pedantic-errors"; }
"$bindir/pomelo-token" mint --key "$tmp/server.key" --protocol-id 0x6a6d --client-id 100 --server "127.0.0.1:$port" \
    --format bin -o "$tmp/c.token" >"$tmp/mint.log" 2>&1 || fail "pomelo-token mint"
"$tmp/cgame/echo_client" "$tmp/c.token" 100 64 >"$tmp/cclient.out" 2>&1 || fail "the C client against game_server"
echo "plain-C client (c11, pedantic) echoed 100 payloads off the out-of-tree server"

kill -TERM "$server_pid"
for _ in $(seq 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && fail "game_server did not stop on SIGTERM"
wait "$server_pid"
rc=$?
pid=$server_pid
server_pid=
[ "$rc" = 0 ] || fail "game_server exited with $rc"
[ "$(grep -c '^worker [0-9]*: client [0-9]* connected$' "$tmp/server.out")" = 9 ] || fail "game_server did not see 9 connects"
[ "$(grep -c 'left (client disconnected)' "$tmp/server.out")" = 9 ] || fail "game_server did not see 9 disconnects"
grep -Eq 'client [0-9]+ at 127\.0\.0\.1:[0-9]+ rtt [0-9]+ us' "$tmp/server.out" || fail "game_server reported no round trip"
grep -q "game_server: stopped; 9 connections, 900 payloads echoed" "$tmp/server.out" || fail "game_server's counters disagree"
[ -e "/var/run/dpdk/pomelo-$pid" ] && fail "game_server left its DPDK runtime directory /var/run/dpdk/pomelo-$pid"
echo "game_server served 9 clients (8 load-generator, 1 plain C), 900 echoes, and stopped cleanly"
echo "PASS"
