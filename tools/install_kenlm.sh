#!/usr/bin/env bash
# Build KenLM's `lmplz` (n-gram estimation) and `build_binary` (ARPA -> binary) into
# tools/kenlm/bin from the KenLM source distribution on PyPI. Idempotent: does nothing when
# both programs are there and run. Needs a C++ compiler, CMake and Boost, which
# tools/install_system_deps.sh installs with apt as root (otherwise it prints the apt command).
# The same tarball, tools/kenlm/download/kenlm-0.3.0.tar.gz, gives setup.py the sources of
# KenLM's query library, which ds2's beam search compiles in; --download-only fetches just that.
#
#   tools/install_kenlm.sh            # uses python3 for `pip download`
#   PYTHON=.venv/bin/python tools/install_kenlm.sh
#   PYTHON=.venv/bin/python tools/install_kenlm.sh --download-only
set -euo pipefail

download_only=false
[ "${1:-}" = "--download-only" ] && download_only=true

version=0.3.0
root="$(cd "$(dirname "$0")" && pwd)/kenlm"
bin="$root/bin"
python="${PYTHON:-python3}"

tarball="$root/download/kenlm-$version.tar.gz"
if [ ! -f "$tarball" ]; then
  echo "Downloading the KenLM $version source distribution from PyPI" >&2
  mkdir -p "$root/download"
  tmp="$(mktemp -d "$root/download/tmp.XXXXXX")"
  # --no-build-isolation: only fetch the tarball, do not build its build requirements from source
  "$python" -m pip download --quiet --no-binary :all: --no-deps --no-build-isolation "kenlm==$version" -d "$tmp"
  mv "$tmp/kenlm-$version.tar.gz" "$tarball"  # atomic: setup.py may fetch it meanwhile
  rm -rf "$tmp"
fi
$download_only && exit 0

if [ -x "$bin/lmplz" ] && [ -x "$bin/build_binary" ] && "$bin/build_binary" --help 2>&1 | grep -q -i usage; then
  exit 0
fi

"$(dirname "$0")/install_system_deps.sh"  # compiler, CMake, Boost

build="$root/build"
rm -rf "$build" && mkdir -p "$build"
tar -xzf "$tarball" -C "$build"
echo "Building lmplz and build_binary (about a minute on 2 cores)" >&2
cmake -S "$build/kenlm-$version" -B "$build/cmake" -DCMAKE_BUILD_TYPE=Release >"$build/cmake.log" 2>&1 ||
  { tail -20 "$build/cmake.log" >&2; echo "cmake failed: see $build/cmake.log" >&2; exit 1; }
make -C "$build/cmake" -j"$(nproc)" lmplz build_binary >"$build/make.log" 2>&1 ||
  { tail -20 "$build/make.log" >&2; echo "make failed: see $build/make.log" >&2; exit 1; }
mkdir -p "$bin"
for prog in lmplz build_binary; do
  install -m 755 "$build/cmake/bin/$prog" "$bin/$prog.tmp" && mv "$bin/$prog.tmp" "$bin/$prog"
done
rm -rf "$build"
echo "KenLM tools are in $bin" >&2
