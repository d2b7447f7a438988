"""Which implementation of a compiled step runs: its C core, or its pure-Python reference.

Each C core (``_bookcore``, ``_washcore``) is optional at install time, and each has a Python
twin that gives the same frames. The choice is the caller's ``core`` argument, else the
step's environment variable, else "auto": the C core when it was built.
"""

from __future__ import annotations

import os
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
