#!/usr/bin/env bash
# Install the Debian packages evrec builds, tests and runs with, if any are missing.
# Used by `make run`, `make test` and CI, so a fresh Debian machine needs nothing else.
set -euo pipefail
PKGS="build-essential pkg-config liblmdb-dev libcjson-dev libmbedtls-dev libssl-dev libcurl4-openssl-dev
      libcmocka-dev libsqlite3-dev libyaml-dev python3 python3-botocore openssl awscli
      systemd ${EVREC_EXTRA_PKGS:-}"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install:$missing" >&2; exit 1; }
  SUDO="sudo"
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
