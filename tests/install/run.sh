#!/usr/bin/env bash
# Install into a temporary DESTDIR, then build and run an out-of-tree program against the
# installed copy using only `pkg-config --cflags --libs evrec` (shared and static).
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
# Under `make asan` the installed library is instrumented: the consumer must be too.
SAN=${SANFLAGS:-}
check() { if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "install: FAILED: $*"; fi; }
make -s install DESTDIR="$tmp/root" PREFIX=/usr/local >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "install: 0 passed, 1 failed"; exit 1; }
export PKG_CONFIG_PATH="$tmp/root/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
lib="$tmp/root/usr/local/lib"
check test "$(readlink "$lib/libevrec.so.0")" != ""
check sh -c "objdump -p '$lib/libevrec.so' | grep -q 'SONAME *libevrec.so.0'"
# Only evrec_* symbols are exported by the shared library.
check sh -c "! nm -D --defined-only '$lib/libevrec.so' | awk '{print \$3}' | grep -v '^evrec_' | grep -q ."
check test -f "$tmp/root/usr/local/share/man/man1/evrec.1"
check test -x "$tmp/root/usr/local/bin/evrec"
shared_ok() {
  cc -std=c11 -Wall -Werror $SAN tests/install/consumer.c $(pkg-config --cflags --libs evrec) -o "$tmp/consumer" &&
  LD_LIBRARY_PATH="$lib" "$tmp/consumer" "$tmp/store1"
}
static_ok() {
  cc -std=c11 -Wall -Werror $SAN tests/install/consumer.c \
     $(pkg-config --static --cflags --libs evrec | sed "s|-levrec|$lib/libevrec.a|") \
     -o "$tmp/consumer-static" && "$tmp/consumer-static" "$tmp/store2"
}
check shared_ok
check static_ok
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
