#!/usr/bin/env bash
# `make size`: the footprint, reported (not asserted).
#   - text/data/bss of the static library built at -Os, without its dependencies
#   - the CLI's size
#   - peak heap (valgrind massif) of build-os/footprint (tools/footprint.c) recording and flushing 10,000
#     events against the local endpoint, when that program exists
set -euo pipefail
cd "$(dirname "$0")/.."
make -s BUILD=build-os OPT=-Os lib build-os/evrec >/dev/null
echo "== static library at -Os (agent + port, no dependencies)"
size -t build-os/libevrec.a | awk 'NR==1 || /TOTALS/'
text=$(size -t build-os/libevrec.a | awk '/TOTALS/ {print $1}')
echo "library text: $text bytes ($(( text / 1024 )) KiB; target <= 150 KiB)"
echo "== CLI at -Os"
size build-os/evrec | tail -1
echo "CLI file size: $(stat -c %s build-os/evrec) bytes"
echo "== encryption at rest (AES-256-GCM, agent/seal.c): what it adds"
echo "agent/seal.o at -Os: text $(size build-os/obj/agent/seal.o | awk 'NR==2 {print $1}') bytes"
mbed=$(for d in /usr/lib/$(gcc -print-multiarch 2>/dev/null) /usr/lib /usr/local/lib; do
         [ -f "$d/libmbedcrypto.a" ] && { echo "$d/libmbedcrypto.a"; break; }; done)
if [ -n "$mbed" ]; then
  # mbedtls_gcm_setkey goes through the cipher layer, whose table names every enabled cipher:
  # a static link of a default mbedTLS build pulls those in too (a firmware's trimmed
  # mbedtls_config.h does not).
  size "$mbed" 2>/dev/null | awk '$6 ~ /^(aes|aesni|gcm)\.c\.o$/ {g += $1} $6 ~ /^cipher(_wrap)?\.c\.o$/ {c += $1}
      END {printf "mbedTLS linked for it (%s): aes + aesni + gcm text %d bytes; cipher + cipher_wrap %d bytes\n", "static", g, c}'
else
  echo "mbedTLS: no libmbedcrypto.a here; aes.o + gcm.o + the cipher layer are what a static link adds"
fi
if [ -f tools/footprint.c ]; then
  make -s BUILD=build-os OPT=-Os build-os/footprint >/dev/null
  out=$(mktemp -d)
  python3 tools/fake_endpoint.py --port-file "$out/port" --log "$out/events.jsonl" >/dev/null 2>&1 &
  fake=$!
  trap 'kill $fake 2>/dev/null; rm -rf "$out"' EXIT
  for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.1; done
  export EVREC_FOOTPRINT_URL="http://127.0.0.1:$(cut -d' ' -f1 "$out/port")"
  valgrind --tool=massif --massif-out-file="$out/massif.out" build-os/footprint \
      --events 10000 --store "$out/store" > "$out/run.txt" 2>"$out/valgrind.txt" \
      || { cat "$out/valgrind.txt" "$out/run.txt"; exit 1; }
  cat "$out/run.txt"
  peak=$(grep -E '^mem_heap_B=' "$out/massif.out" | cut -d= -f2 | sort -n | tail -1)
  body=$(sed -n 's/^max_request_body_bytes=//p' "$out/run.txt" | tail -1)
  own=$(sed -n 's/^evrec_heap_peak_bytes=//p' "$out/run.txt" | tail -1)
  lmdb=$(awk '/heap_tree=peak/{f=1;next} f&&/^snapshot=/{exit} f&&/^ n[0-9]+: [0-9]+ .*(mdb_env_open|mdb_midl_alloc)/{s+=$2} END{print s+0}' "$out/massif.out")
  echo "peak heap of the whole process while recording and flushing 10,000 events: $peak bytes ($(( peak / 1024 )) KiB)"
  echo "  of which LMDB's fixed per-environment tables (mdb_env_open): $lmdb bytes ($(( lmdb / 1024 )) KiB)"
  echo "  of which evrec's own allocations (through evrec_set_allocator) at their peak: $own bytes ($(( own / 1024 )) KiB)"
  [ -n "$body" ] && echo "request body bound: $body bytes; target for evrec's heap <= 256 KiB + one body = $(( 262144 + body )) bytes"
fi
