"""The model zoo: a registry of generators and discriminative models, hooked by layer name.

`get(name)` gives a model's `ModelSpec`, `load(name, weights)` builds it with its weights, and
`ModelSpec.run` returns the maps of its hooked layers. `python -m rosetta_steps.models list`
prints the zoo.
"""

from . import zoo  # noqa: F401  (registers the shapes zoo)
from .hooks import capture, tokens_to_map
from .registry import (
    DISCRIMINATIVE,
    GENERATOR,
    Latent,
    ModelSpec,
    Preprocess,
    get,
    load,
    names,
    register,
)

__all__ = ["DISCRIMINATIVE", "GENERATOR", "Latent", "ModelSpec", "Preprocess", "capture", "get",
           "load", "names", "register", "tokens_to_map"]
