#!/usr/bin/env bash
# Make a sysroot of evrec's dependencies for a cross build: Debian's arm64/armhf builds of the
# -dev packages (and the libraries they need at run time), downloaded with apt and unpacked
# with dpkg -x into a folder. Nothing is installed for the foreign architecture, so the host's
# packages never have to match the foreign versions exactly (multiarch would require that).
# The C library comes from the cross toolchain (crossbuild-essential-<arch>).
# Usage: tools/cross/sysroot.sh ARCH SYSROOT     (ARCH: arm64 | armhf)
set -euo pipefail
arch=${1:?arch}
root=${2:?sysroot dir}
case "$arch" in
  arm64) triplet=aarch64-linux-gnu ;;
  armhf) triplet=arm-linux-gnueabihf ;;
  *) echo "sysroot.sh: unknown architecture $arch" >&2; exit 2 ;;
esac
[ -f "$root/.complete" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  $SUDO dpkg --add-architecture "$arch"
  need_update=1
fi
missing=""
for p in crossbuild-essential-$arch qemu-user; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] || [ "$need_update" -eq 1 ]; then
  $SUDO apt-get update -q || true   # a foreign index that fails to sync must not stop us
fi
if [ -n "$missing" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi

top="libcurl4-openssl-dev liblmdb-dev libcjson-dev libmbedtls-dev libcmocka-dev libyaml-dev"
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
         --no-replaces --no-enhances --no-pre-depends $(for p in $top; do echo "$p:$arch"; done) \
       | grep -E "^[a-z0-9].*:$arch\$" | sort -u \
       | grep -vE '^(libc6|libgcc-s1|gcc-12-base|libcrypt1):' || true)
[ -n "$pkgs" ] || { echo "sysroot.sh: apt knows no $arch packages (apt-get update?)" >&2; exit 1; }
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
(cd "$dl" && apt-get download -q $pkgs >/dev/null)
rm -rf "$root"
mkdir -p "$root"
for deb in "$dl"/*.deb; do dpkg -x "$deb" "$root"; done
# Absolute symlinks inside the packages (lib*.so -> /usr/lib/...) must point into the sysroot.
find "$root" -type l | while read -r l; do
  t=$(readlink "$l")
  case "$t" in /*) ln -sfn "$root$t" "$l" ;; esac
done
echo "$triplet" > "$root/.triplet"
touch "$root/.complete"
echo "sysroot for $arch ready in $root ($(echo "$pkgs" | wc -l) packages)"
