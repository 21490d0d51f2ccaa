"""Rosetta Neurons (Dravid et al., ICCV 2023) as steps: `python -m rosetta_steps.<step>`.

The top level holds only the steps; the library lives in subpackages: `core` (errors,
options, devices, stores, images, the shapes world), `models` (the registry and the zoo),
`mining` (correlation, best buddies, concepts), `pages`, `inversion` and `training`.
For scripts, the method's two entry points are importable from here:

    from rosetta_steps import CorrelationAccumulator, best_buddies
"""

from importlib import import_module

# Imported on first use, so that a step, which imports this package first, does not load the
# correlation kernel it may not need (nor depend on its source in the workflow).
_API = {"CorrelationAccumulator": "rosetta_steps.mining.correlation",
        "best_buddies": "rosetta_steps.mining.buddies"}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
