"""Builds taxlens' compiled cores (C with the Python C API, no other build dependency);
everything else is in pyproject.toml. They need a C compiler with __int128 (gcc or clang on a
64-bit target). They are optional: where one cannot be built, pip still installs taxlens and
the same work runs on its pure-Python reference (tests/lots/test_wash_core.py fails loudly
when the core is missing, so CI notices)."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension("taxlens.lots._washcore", sources=["taxlens/lots/_washcore.c"], extra_compile_args=FLAGS, optional=True),
    ]
)
