#!/usr/bin/env bash
# Make sure the system packages that pip cannot install are there:
#   espeak-ng, fortunes-min, fortunes, fortunes-zh   speech and sentences of the synthetic corpora
#   g++ make cmake, Boost, zlib/bz2/lzma dev packages   to build KenLM (tools/install_kenlm.sh
#                                                       and the Python `kenlm` module)
#   chromium chromium-driver                            a real browser for the page's test
#                                                       (tests/test_serve_browser.py)
# Installs what is missing with apt when run as root; otherwise prints the exact command and fails.
set -euo pipefail

packages=(espeak-ng fortunes-min fortunes fortunes-zh
          g++ make cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev
          libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
          chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
