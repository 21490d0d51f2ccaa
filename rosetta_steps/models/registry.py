"""The model registry: every model of the zoo by name, with what the method needs to know.

A `ModelSpec` says whether a model is a generator or a discriminative model, how to build it
and load its weights, which layers' post-activation outputs are its units (Sec. 3), and either
its input preprocessing (discriminative) or its latent sampler (generators). Adding a model is
one `register(ModelSpec(...))`; everything downstream (matching, dictionaries) goes by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from scipy.stats import truncnorm
from torch import nn

from ..cli import UserError
from ..correlation import LayerSpec
from .hooks import capture

GENERATOR = "generator"
DISCRIMINATIVE = "discriminative"

# generate(model, z, class_index, truncation) -> images in [-1, 1], [batch, 3, h, w]
Generate = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None", "float | None"],
                    torch.Tensor]


@dataclass(frozen=True)
class Preprocess:
    """How a discriminative model wants its input: size, resize mode, normalisation."""

    size: int
    resize: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] [batch, 3, h, w] (what generators give) -> model input."""
        x = images.float()
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode=self.resize,
                              align_corners=False, antialias=False).clamp(-1, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return ((x + 1) / 2 - mean) / std


@dataclass(frozen=True)
class Latent:
    """A generator's latent space: z ~ N(0, I) of `dim`, or truncated as BigGAN samples it."""

    dim: int
    truncation: float | None = None  # default; None is the plain normal
    num_classes: int = 0  # > 0: class-conditional

    def sample(self, seed: int, indices: Sequence[int], truncation: float | None = None
               ) -> torch.Tensor:
        """Latents [len(indices), dim] where row i depends only on (seed, indices[i]).

        With a truncation t, z = t * truncnorm(-2, 2) (BigGAN's truncation trick).
        """
        t = self.truncation if truncation is None else truncation
        rows = []
        for i in indices:
            rng = np.random.default_rng([seed, int(i)])
            if t is None:
                rows.append(rng.standard_normal(self.dim))
            else:
                rows.append(t * truncnorm.rvs(-2, 2, size=self.dim, random_state=rng))
        return torch.from_numpy(np.stack(rows).astype(np.float32)).reshape(-1, self.dim)


def _call_with_z(model: nn.Module, z: torch.Tensor, _y: torch.Tensor | None,
                 _truncation: float | None) -> torch.Tensor:
    return model(z)


def load_state_dict_file(model: nn.Module, path: Path) -> None:
    """Load a safetensors or torch state-dict file (tensors only, no pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline knows about one model of the zoo."""

    name: str
    kind: str  # GENERATOR or DISCRIMINATIVE
    objective: str  # how it was trained, for the dictionary's header
    build: Callable[[], nn.Module]  # the architecture with fresh weights
    layers: tuple[str, ...]  # modules whose post-activation outputs are the units
    preprocess: Preprocess | None = None  # discriminative models
    latent: Latent | None = None  # generators
    generate: Generate = _call_with_z  # generators
    load_weights: Callable[[nn.Module, Path], None] = load_state_dict_file
    weights_hint: str = ""  # how to obtain the weights file
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (GENERATOR, DISCRIMINATIVE):
            raise ValueError(f"{self.name}: kind must be {GENERATOR!r} or {DISCRIMINATIVE!r}")
        if self.kind == GENERATOR and self.latent is None:
            raise ValueError(f"{self.name}: a generator needs a latent sampler")
        if self.kind == DISCRIMINATIVE and self.preprocess is None:
            raise ValueError(f"{self.name}: a discriminative model needs its preprocessing")

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A dummy input of the right shape (a latent or a preprocessed image batch)."""
        if self.kind == GENERATOR:
            return torch.zeros(batch, self.latent.dim)
        return torch.zeros(batch, 3, self.preprocess.size, self.preprocess.size)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
            truncation: float | None = None) -> tuple[torch.Tensor | None, dict]:
        """One forward pass: (generated images or None, {layer: [batch, C, s, s] maps})."""
        images = None
        with capture(model, self.layers, stop=self.kind == DISCRIMINATIVE) as maps:
            if self.kind == GENERATOR:
                images = self.generate(model, x, y, truncation)
            else:
                model(x)
        return images, maps

    def layer_specs(self) -> list[LayerSpec]:
        """Hooked layers with channel counts and map sizes, from one shape-only forward pass."""
        try:
            with torch.device("meta"):
                model = self.build().eval()
                _, maps = self.run(model, self.example_input())
        except (NotImplementedError, RuntimeError):  # an op without a meta kernel
            model = self.build().eval()
            with torch.no_grad():
                _, maps = self.run(model, self.example_input())
        return [LayerSpec(name, int(m.shape[1]), int(m.shape[-1])) for name, m in maps.items()]


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Every registered model name, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> ModelSpec:
    """The spec of a model; an unknown name is a user error that lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(names())}") from None


def load(name: str, weights: str | Path | None, device: torch.device | str = "cpu"
         ) -> tuple[ModelSpec, nn.Module]:
    """Build a model, load its weights file and put it in eval mode on `device`."""
    spec = get(name)
    model = spec.build()
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            hint = f"; {spec.weights_hint}" if spec.weights_hint else ""
            raise UserError(f"{name}: weights file {path} not found{hint}")
        try:
            spec.load_weights(model, path)
        except (RuntimeError, OSError, ValueError, SafetensorError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"{name}: cannot load weights from {path}: {first}") from None
    return spec, model.to(device).eval()
