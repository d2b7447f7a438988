"""Builds taxlens' compiled cores (C with the Python C API, no other build dependency):
the wash-sale pass's loop (taxlens/lots/_washcore.c) and the lot-booking loop for LIFO, HIFO
and TaxMin (taxlens/lots/_bookcore.c). Everything else is in pyproject.toml. They need a C
compiler with __int128 (gcc or clang on a 64-bit target). They are optional: where one cannot
be built, pip still installs taxlens and the same work runs on its pure-Python reference
(tests/lots/test_wash_core.py and test_book_core.py fail loudly when a core is missing, so CI
notices)."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(f"taxlens.lots.{name}", sources=[f"taxlens/lots/{name}.c"], depends=["taxlens/lots/_halfeven.h"],
                  extra_compile_args=FLAGS, optional=True)
        for name in ("_washcore", "_bookcore")
    ]
)
