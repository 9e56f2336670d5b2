#!/usr/bin/env bash
# Install the Debian 12 packages nvmekeep needs to build and test.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config
  libcmocka-dev liburing-dev libprotobuf-c-dev protobuf-c-compiler libjson-c-dev
  libnbd-dev libnbd-bin qemu-utils fio valgrind
  clang libclang-rt-14-dev
  libsystemd-dev libgnutls28-dev libunistring-dev nbdkit fuse3 openssl
  bash-completion libpci-dev libmount-dev
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "nvmekeep: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
