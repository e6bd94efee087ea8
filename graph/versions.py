"""The resolved versions of the numeric stack, for run records and model files.

The same seed gives the same numbers only on the same numeric libraries (a different numpy or
scipy may round a transcendental function differently in its last bit), so everything the
project persists says which versions computed it. ``requirements.lock`` pins them for
installs.

>>> sorted(numeric_stack())[:3]
['arch', 'numpy', 'pandas']
"""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["NUMERIC_STACK", "numeric_stack"]

#: The distributions whose versions decide the numbers a run or a model computes.
NUMERIC_STACK = ("numpy", "scipy", "pandas", "pyarrow", "arch", "torch", "torch-geometric")


def numeric_stack() -> dict[str, str]:
    """``{distribution: version}`` for :data:`NUMERIC_STACK` and ``python`` (the
    interpreter); a distribution that is not installed is ``"not installed"``."""
    out = {"python": platform.python_version()}
    for name in NUMERIC_STACK:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
