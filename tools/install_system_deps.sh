#!/usr/bin/env bash
# Make sure the system packages that pip cannot install are there:
#   espeak-ng, fortunes-min, fortunes, fortunes-zh   speech and sentences of the synthetic corpora
#   festival festvox-kallpc16k festvox-kdlpc16k       festival and its English voices kal_diphone,
#   festvox-us-slt-hts                                 ked_diphone and cmu_us_slt_arctic_hts (egs/synth)
#   flite                                              flite and its voices rms and awb (egs/synth --flite-share)
#   g++ make cmake, Boost, zlib/bz2/lzma dev packages   to build KenLM (tools/install_kenlm.sh
#                                                       and the Python `kenlm` module)
#   chromium chromium-driver fonts-liberation           a real browser for the page's test
#                                                       (tests/test_serve_browser.py), headless: without
#                                                       what chromium recommends for a desktop (printing,
#                                                       Samba, notifications: about a hundred packages)
# Installs what is missing with apt when run as root; otherwise prints the exact command and fails.
set -euo pipefail

packages=(espeak-ng fortunes-min fortunes fortunes-zh festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite
          g++ make cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev
          libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
browser=(chromium chromium-driver fonts-liberation)  # installed with --no-install-recommends

missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_browser < <(missing_of "${browser[@]}")
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_browser[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update"
[ ${#missing[@]} -eq 0 ] || cmd+=" && apt-get install -y ${missing[*]}"
[ ${#missing_browser[@]} -eq 0 ] || cmd+=" && apt-get install -y --no-install-recommends ${missing_browser[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]} ${missing_browser[*]}. Install them with:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing ${missing[*]} ${missing_browser[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#missing_browser[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing_browser[@]}" >/dev/null
fi
