"""Build of the one compiled part of ds2: the C++ frame loop of the prefix beam search.

Everything else is in pyproject.toml; `pip install -e .` compiles this with the system g++.
"""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

setup(
    ext_modules=[
        Pybind11Extension("ds2.decode._prefix_beam", ["ds2/decode/_prefix_beam.cpp"], cxx_std=17,
                          extra_compile_args=["-O2"]),
    ],
)
