#!/usr/bin/env bash
# `make check-symbols`: the installed libraries export the public API and nothing else.
#   1. libevrec.a defines no global symbol that is not evrec_* (its internals are made local
#      when it is built: a firmware linking it statically meets none of our names);
#   2. libevrec.so exports no dynamic symbol that is not evrec_*;
#   3. the CLI defines no global in libyaml's namespace (yaml_*).
# Usage: tests/build/check_symbols.sh LIBEVREC.A LIBEVREC.SO EVREC-CLI
set -uo pipefail
static=${1:?usage: check_symbols.sh LIBEVREC.A LIBEVREC.SO EVREC-CLI}
shared=${2:?}
cli=${3:?}
passed=0; failed=0
check() { if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); echo "check-symbols: FAILED: $*"; fi; }

# Every defined global or weak symbol of the file (nm's third column), one a line.
defined_globals() { nm "$@" --defined-only 2>/dev/null | awk 'NF == 3 && $2 ~ /^[A-Z]$/ { print $3 }'; }

only_evrec() {
  local what=$1; shift
  local hits
  hits=$(defined_globals "$@" | grep -v '^evrec_' | sort -u)
  [ -n "$(defined_globals "$@")" ] || { echo "check-symbols: $what defines nothing"; return 1; }
  [ -z "$hits" ] || { echo "check-symbols: $what exports $(echo "$hits" | wc -l) non-evrec_ symbols:";
                      echo "$hits" | head -20; return 1; }
}
no_yaml_names() {
  local hits
  hits=$(defined_globals "$cli" | grep '^yaml_' || true)
  [ -z "$hits" ] || { echo "check-symbols: $cli defines libyaml's names:"; echo "$hits"; return 1; }
}
check only_evrec "$static" "$static"
check only_evrec "$shared" -D "$shared"
check no_yaml_names
echo "check-symbols: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
