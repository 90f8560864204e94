#!/usr/bin/env bash
# `make check-port`: nothing under agent/ may reach the operating system except through
# port/port.h, so that an RTOS port is a folder of its own.
#   1. no OS headers are included under agent/;
#   2. every symbol the agent objects import is either port_*, a fixed dependency
#      (LMDB, cJSON, libcurl, mbedTLS), or a pure ISO C library function (string, math,
#      number formatting and parsing) — no allocation, files, clocks, threads or randomness.
# Usage: tools/check_port.sh OBJDIR (the directory holding the compiled agent/*.o)
set -euo pipefail
objdir=${1:?usage: check_port.sh OBJDIR}
cd "$(dirname "$0")/.."
fail=0

bad_includes=$(grep -nE '^\s*#\s*include\s*<(pthread\.h|unistd\.h|fcntl\.h|sys/[^>]*|dirent\.h|signal\.h|sched\.h|semaphore\.h|dlfcn\.h|netdb\.h|arpa/[^>]*|netinet/[^>]*|syslog\.h|poll\.h|termios\.h)>' agent/*.c agent/*.h || true)
if [ -n "$bad_includes" ]; then
  echo "check-port: agent/ includes operating-system headers (use port/port.h):"
  echo "$bad_includes"
  fail=1
fi

# Sanitizer hooks (make asan) are the compiler's, not the OS's.
allowed='^(port_|mdb_|cJSON_|curl_|mbedtls_|evrec_|__asan_|__ubsan_|__sanitizer_)'
# Pure ISO C functions (and the names glibc gives some of them).
iso='^(mem(cpy|move|set|cmp|chr)|str(len|nlen|cmp|ncmp|chr|rchr|str|spn|cspn|pbrk|coll|ncpy|cpy|cat|ncat|tod|tof|tol|toul|toll|toull|toimax|toumax|error)|v?s?n?printf|sscanf|__isoc99_sscanf|__isoc23_strto.*|q?sort|bsearch|l?l?abs|div|ldiv|floor|ceil|fabs|fmod|modf|frexp|ldexp|pow|sqrt|log|log10|exp|round|lround|llround|trunc|nan|isnan|isinf|__isnan|__isinf|__finite|__fpclassify|to(lower|upper)|is(alpha|digit|space|xdigit|alnum|upper|lower|print|punct|cntrl|graph)|__ctype_(b|tolower|toupper)_loc|__errno_location|__stack_chk_fail|__assert_fail|abort|__.*_chk|_GLOBAL_OFFSET_TABLE_|__tls_get_addr)$'

objs=$(ls "$objdir"/agent/*.o 2>/dev/null || true)
if [ -z "$objs" ]; then
  echo "check-port: no objects under $objdir/agent (build first)"
  exit 1
fi
# Calls between agent modules (sigv4_sign, log_redact, ...) stay inside the library.
internal=" $(nm -g --defined-only $objs 2>/dev/null | awk 'NF == 3 {print $3}' | tr '\n' ' ') "
for o in $objs; do
  for sym in $(nm -u "$o" | awk '{print $2}' | sed 's/@.*//'); do
    if [[ "$sym" =~ $allowed ]] || [[ "$sym" =~ $iso ]] || [[ "$internal" == *" $sym "* ]]; then
      continue
    fi
    echo "check-port: $(basename "$o" .o).c calls '$sym' directly (go through port/port.h)"
    fail=1
  done
done
# Neither the library nor the command-line tool ever starts a shell. Programs are started only
# by the port functions made for them (port_run_capture: a profile's credential_process;
# port_run_feed: the CLI's output pager; both the AWS CLI's contracts), with posix_spawnp and an
# argument vector, never a shell: the POSIX port may import posix_spawnp, and nothing else may
# start anything.
for o in "$objdir"/agent/*.o "$objdir"/port/*.o "$objdir"/port/posix/*.o "$objdir"/tools/evrec/*.o; do
  [ -f "$o" ] || continue
  spawn_re='^(system|popen|exec[lv]p?e?|execvpe|posix_spawnp?|fork|vfork|wordexp)$'
  [[ "$o" == */port/posix/port_posix.o ]] && spawn_re='^(system|popen|exec[lv]p?e?|execvpe|posix_spawn|fork|vfork|wordexp)$'
  spawn=$(nm -u "$o" | awk '{print $2}' | sed 's/@.*//' | grep -E "$spawn_re" || true)
  if [ -n "$spawn" ]; then
    echo "check-port: $(basename "$o" .o).c starts programs ($(echo $spawn)): evrec never spawns a shell; only port_run_capture and port_run_feed start programs"
    fail=1
  fi
done
if [ "$fail" -eq 0 ]; then
  echo "check-port: agent/ reaches the OS only through port/ ($(echo "$objs" | wc -w) objects checked); only port_run_capture and port_run_feed start programs (no shell)"
fi
exit "$fail"
