"""Which implementation of a compiled step runs: its C core, or its pure-Python reference.

Each C core (``_bookcore``, ``_washcore``) is optional at install time, and each has a Python
twin that gives the same frames. The choice is the caller's ``core`` argument, else the
step's environment variable, else "auto": the C core when it was built.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

CORES = ("auto", "compiled", "python")


def choose(step: str, env: str, module: ModuleType | None, missing: str, core: str | None = None) -> str:
    """"compiled" or "python" for ``step`` (a name for messages): ``core``, else $``env``, else
    "auto". ``module`` is the C core, None when it was not built (``missing`` says why).
    Raises ValueError for an unknown choice, ImportError when "compiled" is asked for and
    there is no core."""
    choice = core or os.environ.get(env) or "auto"
    if choice not in CORES:
        raise ValueError(f"{step} core {choice!r}: expected one of {', '.join(CORES)}")
    if choice == "python":
        return choice
    if module is None:
        if choice == "compiled":
            raise ImportError(f"the compiled {step} core is not built: {missing}")
        return "python"
    return "compiled"


def load(name: str) -> tuple[ModuleType | None, str]:
    """The C core ``taxlens.lots.<name>`` and "", or None and why it cannot be used: it was not
    built (no C compiler at install), or the machine is big-endian (the cores read Decimal128
    buffers as little-endian __int128)."""
    try:
        module = importlib.import_module(f"taxlens.lots.{name}")
    except ImportError as exc:  # pragma: no cover - only where no C compiler built it
        return None, str(exc)
    if sys.byteorder != "little":  # pragma: no cover
        return None, "it reads little-endian buffers"
    return module, ""
