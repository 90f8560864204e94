#!/usr/bin/env bash
# `make check-tree`: the repository stands alone and builds as a C project does.
#   1. `make` with no target builds everything: the Makefile's default goal is `all`;
#   2. nothing in tests/, tools/ or the Makefile reads outside the repository (../shared):
#      the AWS SigV4 suite is kept in tests/data/aws4_testsuite with its LICENSE and NOTICE;
#   3. the release library carries no fault-injection hooks (port_fault_*): they are built
#      into the test programs only (tests/support);
#   4. no test, fuzz target or benchmark #includes a .c file: they link the libraries (the
#      CLI's AWS-compatible part is build/libevrec-cli.a) and include headers.
# Usage: tests/build/check_tree.sh BUILDDIR
set -uo pipefail
build=${1:?usage: check_tree.sh BUILDDIR}
cd "$(dirname "$0")/../.."
passed=0; failed=0
check() { if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "check-tree: FAILED: $*"; fi; }

default_goal() {
  local g
  g=$(make -rpq --no-print-directory BUILD="$build" 2>/dev/null | sed -n 's/^\.DEFAULT_GOAL := //p')
  [ "$g" = all ] || { echo "check-tree: default goal is '$g', not 'all'"; return 1; }
}
no_outside_reads() {
  local hits
  hits=$(grep -rnE '\.\./shared|EVREC_SHARED|/work/shared' Makefile tests tools \
           --exclude=check_tree.sh --exclude-dir=data 2>/dev/null)
  [ -z "$hits" ] || { echo "check-tree: reads outside the repository:"; echo "$hits"; return 1; }
}
suite_here() {
  test -f tests/data/aws4_testsuite/LICENSE && test -f tests/data/aws4_testsuite/NOTICE &&
  test -f tests/data/aws4_testsuite/get-vanilla/get-vanilla.req
}
no_fault_hooks_in_release() {
  local lib hits
  for lib in "$build/libevrec.a" "$build/libevrec.so"; do
    [ -f "$lib" ] || { echo "check-tree: $lib is not built"; return 1; }
    hits=$(nm "$lib" 2>/dev/null | grep -E ' port_fault_' || true)
    [ -z "$hits" ] || { echo "check-tree: $lib holds fault-injection hooks:"; echo "$hits"; return 1; }
  done
}
no_c_includes() {
  local hits
  hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^">]*\.c[">]' tests tools/bench \
           --include='*.c' --include='*.h' 2>/dev/null)
  [ -z "$hits" ] || { echo "check-tree: sources included as .c files (link the library instead):";
                      echo "$hits"; return 1; }
}
check default_goal
check no_outside_reads
check suite_here
check no_fault_hooks_in_release
check no_c_includes
echo "check-tree: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
