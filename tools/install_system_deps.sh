#!/usr/bin/env bash
# Make sure the system tools that pip cannot install are there: espeak-ng (speech for the
# synthetic corpus) and Debian's fortunes texts (its sentences). Installs them with apt when
# run as root; otherwise prints the exact command and fails.
set -euo pipefail

packages=(espeak-ng fortunes-min fortunes)
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ -f /usr/share/games/fortunes/fortunes ] || missing+=(fortunes-min)
[ -f /usr/share/games/fortunes/literature ] || missing+=(fortunes)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update && apt-get install -y ${packages[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${packages[@]}" >/dev/null
