#!/usr/bin/env bash
# Installs the Debian packages teal builds and tests with, when they are missing.
set -euo pipefail
packages=(libgit2-dev libsqlite3-dev pkg-config git python3 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift 6.x is needed on PATH (https://swift.org/install)"; exit 1; }
