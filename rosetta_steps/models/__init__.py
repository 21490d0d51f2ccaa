"""The model zoo: a registry of generators and discriminative models, hooked by layer name.

`get(name)` gives a model's `ModelSpec`, `load(name, weights)` builds it with its weights, and
`ModelSpec.run` returns the maps of its hooked layers. The shapes zoo (`shapes`), the paper's zoo
(`paper`, imported on first need: steps on the shapes zoo do not depend on its code) and
any timm or open_clip model by name (`generic`: `timm:ARCH`, `open_clip:ARCH/TAG`) are
registered, and `pixels` (`pixels`: fixed image measurements, the pixel control), and the
untrained twin of any discriminative model (`untrained`: `twin<seed>:<model>`).
`python -m rosetta_steps.models list` prints the zoo and
whether each model's weights are present; `fetch NAME...` downloads them.
"""

from . import shapes  # noqa: F401, I001  (registers the shapes zoo first: it leads `names()`)
from . import generic  # noqa: F401  (timm: and open_clip: names)
from .hooks import capture, tokens_to_map
from .untrained import twin_spec
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
    register_provider,
    register_resolver,
)

register_provider(f"{__name__}.paper")
register_provider(f"{__name__}.faces")
register_provider(f"{__name__}.pixels")
register_resolver("twin", twin_spec)

__all__ = ["DISCRIMINATIVE", "GENERATOR", "Latent", "ModelSpec", "Preprocess", "capture", "get",
           "load", "names", "register", "register_provider", "register_resolver",
           "tokens_to_map"]
