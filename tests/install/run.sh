#!/usr/bin/env bash
# Install into a temporary DESTDIR, then build and run an out-of-tree program against the
# installed copy using only `pkg-config --cflags --libs evrec` (shared and static). Two
# installs in a row with different PREFIX and DESTDIR: each one's files name its own PREFIX.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
# Under `make asan` the installed library is instrumented: the consumer must be too.
SAN=${SANFLAGS:-}
check() { if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "install: FAILED: $*"; fi; }

# The unit as installed, with ExecStart pointing into DESTDIR so that systemd-analyze can
# check the binary it names; skipped (with the reason) only where there is no systemd.
unit_ok() {
  local root=$1 prefix=$2 unit="$1$2/lib/systemd/system/evrec-agent.service"
  grep -q "^ExecStart=$prefix/bin/evrec agent " "$unit" || { echo "install: ExecStart is not $prefix/bin/evrec"; return 1; }
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "install: systemd-analyze not found (no systemd here): the unit is not verified"
    return 0
  fi
  mkdir -p "$tmp/verify" && sed "s|^ExecStart=$prefix/bin/evrec |ExecStart=$root$prefix/bin/evrec |" \
    "$unit" > "$tmp/verify/evrec-agent.service"
  local out; out=$(systemd-analyze verify --man=no "$tmp/verify/evrec-agent.service" 2>&1)
  local rc=$?
  [ -n "$out" ] && echo "$out"
  [ "$rc" -eq 0 ] && [ -z "$out" ]
}

one_install() {
  local root=$1 prefix=$2 n=$3
  make -s install DESTDIR="$root" PREFIX="$prefix" >"$tmp/install$n.log" 2>&1 ||
    { cat "$tmp/install$n.log"; failed=$((failed+1)); return; }
  local lib="$root$prefix/lib"
  export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
  check grep -qx "prefix=$prefix" "$lib/pkgconfig/evrec.pc"
  check test "$(pkg-config --variable=includedir evrec)" = "$root$prefix/include"
  check test "$(readlink "$lib/libevrec.so.1")" != ""
  check sh -c "objdump -p '$lib/libevrec.so' | grep -q 'SONAME *libevrec.so.1'"
  # Only evrec_* symbols are exported by the shared library.
  check sh -c "! nm -D --defined-only '$lib/libevrec.so' | awk '{print \$3}' | grep -v '^evrec_' | grep -q ."
  check test -f "$root$prefix/share/man/man1/evrec.1"
  check test -x "$root$prefix/bin/evrec"
  check test -f "$root$prefix/lib/sysusers.d/evrec.conf"
  check unit_ok "$root" "$prefix"
  shared_ok() {
    cc -std=c11 -Wall -Werror $SAN tests/install/consumer.c $(pkg-config --cflags --libs evrec) -o "$tmp/consumer$n" &&
    LD_LIBRARY_PATH="$lib" "$tmp/consumer$n" "$tmp/store$n-shared"
  }
  static_ok() {
    cc -std=c11 -Wall -Werror $SAN tests/install/consumer.c \
       $(pkg-config --static --cflags --libs evrec | sed "s|-levrec|$lib/libevrec.a|") \
       -o "$tmp/consumer$n-static" && "$tmp/consumer$n-static" "$tmp/store$n-static"
  }
  check shared_ok
  check static_ok
}

one_install "$tmp/root" /usr/local 1
# A second install with another PREFIX and DESTDIR right after (nothing cleaned between).
one_install "$tmp/root2" /opt/x 2
check test ! -e "$tmp/root2/usr/local"
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
