"""Build of the one compiled part of ds2: the prefix beam search (ds2/decode/_prefix_beam.cpp) with
KenLM's query library compiled in, so the search asks the LM in C++.

Everything else is in pyproject.toml; `pip install -e .` compiles this with the system g++ (about a
minute on 2 cores, in parallel; $DS2_BUILD_JOBS sets the number of compiler processes).

KenLM's sources come from the source distribution of the PyPI `kenlm` package,
tools/kenlm/download/kenlm-0.3.0.tar.gz, which tools/install_kenlm.sh fetches (`make setup` runs it
first); without it this fetches it the same way (`pip download`). Only what querying a model needs
is compiled: the files the `kenlm` package's own setup.py compiles, util/ and lm/ without the
programs and tests (no estimation, no Boost). Compressed ARPA files are read where zlib, bzip2 or
xz are installed with their headers, as the `kenlm` package does.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, naive_recompile
from setuptools import setup

KENLM_VERSION = "0.3.0"
ROOT = Path(__file__).resolve().parent
TARBALL = ROOT / "tools" / "kenlm" / "download" / f"kenlm-{KENLM_VERSION}.tar.gz"
SOURCE = Path("tools") / "kenlm" / "src" / f"kenlm-{KENLM_VERSION}"  # relative: setuptools wants that


def fetch_tarball() -> None:
    """tools/kenlm/download/kenlm-<version>.tar.gz from PyPI, as tools/install_kenlm.sh fetches it."""
    if TARBALL.is_file():
        return
    print(f"Downloading the KenLM {KENLM_VERSION} source distribution from PyPI", file=sys.stderr)
    TARBALL.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TARBALL.parent) as tmp:
        # pip is a build requirement (pyproject.toml), so this runs in pip's isolated build environment
        # too. --no-build-isolation: only fetch the tarball (pip reads its metadata with the setuptools
        # at hand), do not build its build requirements (CMake) from source.
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
               "--no-build-isolation", f"kenlm=={KENLM_VERSION}", "-d", tmp]
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"could not fetch KenLM's source distribution ({' '.join(cmd[2:])}); fetch it with "
                     f"`tools/install_kenlm.sh --download-only` (make setup does), or put it at {TARBALL}")
        os.replace(Path(tmp) / TARBALL.name, TARBALL)  # atomic: install_kenlm.sh may fetch it meanwhile


def extract_sources() -> list[str]:
    """KenLM's util/ and lm/ extracted from the tarball (once) under tools/kenlm/src; the .cc files
    of the query library, as the `kenlm` package's setup.py lists them."""
    source = ROOT / SOURCE
    if not (source / ".extracted").is_file():
        fetch_tarball()
        source.parent.mkdir(parents=True, exist_ok=True)
        top = f"kenlm-{KENLM_VERSION}/"
        with tempfile.TemporaryDirectory(dir=source.parent) as tmp, tarfile.open(TARBALL) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(
                tuple(top + p for p in ("lm/", "util/", "LICENSE", "COPYING")))]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # no links out, no odd modes
            tar.extractall(tmp, members=members, **safe)
            Path(tmp, top, ".extracted").touch()
            if source.exists():  # a partial extraction of an interrupted build
                shutil.rmtree(source)
            try:
                os.replace(Path(tmp, top), source)
            except OSError:  # another build extracted it meanwhile
                if not (source / ".extracted").is_file():
                    raise
    files = [f for pattern in ("util/*.cc", "lm/*.cc", "util/double-conversion/*.cc")
             for f in sorted((ROOT / SOURCE).glob(pattern))]
    return [str(f.relative_to(ROOT)) for f in files if not f.name.endswith(("main.cc", "test.cc"))]


def links(header: str, library: str) -> bool:
    """Whether the C++ compiler finds `header` and links `library` (a compression library of KenLM)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "test.cc")
        src.write_text(f"#include <{header}>\nint main() {{}}\n")
        cmd = [os.environ.get("CXX", "c++"), str(src), f"-l{library}", "-o", str(Path(tmp, "test"))]
        return subprocess.run(cmd, capture_output=True).returncode == 0


macros = [("KENLM_MAX_ORDER", "6"), ("NDEBUG", None)]
libraries = []
if sys.platform.startswith("linux"):
    macros.append(("HAVE_CLOCKGETTIME", None))
    libraries.append("rt")
for header, library, define in (("zlib.h", "z", "HAVE_ZLIB"), ("bzlib.h", "bz2", "HAVE_BZLIB"),
                                ("lzma.h", "lzma", "HAVE_XZLIB")):
    if links(header, library):
        macros.append((define, None))
        libraries.append(library)

# KenLM's files compile in parallel; an unchanged object is not compiled again (in a kept build folder).
ParallelCompile("DS2_BUILD_JOBS", needs_recompile=naive_recompile).install()

setup(
    ext_modules=[
        Pybind11Extension(
            "ds2.decode._prefix_beam", ["ds2/decode/_prefix_beam.cpp", *extract_sources()], cxx_std=17,
            include_dirs=[str(SOURCE)], define_macros=macros, libraries=libraries,
            # KenLM's headers use std::binary_function, deprecated in C++17 but still there
            extra_compile_args=["-O2", "-Wno-deprecated-declarations"]),
    ],
)
