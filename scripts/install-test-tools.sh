#!/usr/bin/env bash
# Installs the real programs the tests drive (Debian/Ubuntu): shellcheck, dnsmasq, an OpenSSH server,
# dig, sudo, ufw (the tests only use it with --dry-run), iproute2 and util-linux (network namespaces,
# veth pairs, setpriv) and, when no kubectl is on PATH, Debian's kubectl (kubernetes-client), which the
# tests point at a fake API server on loopback. Safe to run again; uses sudo -n when not root, so it never
# waits for a password.
set -euo pipefail

packages=(shellcheck dnsmasq-base openssh-server dnsutils sudo ufw iproute2 util-linux)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
as_root=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-tools: run as root or install sudo" >&2; exit 1; }
  as_root=(sudo -n)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "install-test-tools: all present (${packages[*]})"
  exit 0
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
