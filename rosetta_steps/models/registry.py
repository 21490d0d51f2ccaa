"""The model registry: every model of the zoo by name, with what the method needs to know.

A `ModelSpec` says whether a model is a generator or a discriminative model, how to build it
and load its weights, which layers' post-activation outputs are its units (Sec. 3), and either
its input preprocessing (discriminative) or its latent sampler (generators). Adding a model is
one `register(ModelSpec(...))`; everything downstream (matching, dictionaries) goes by name.
Names with a registered prefix (`timm:`, `open_clip:`) are resolved on first use.

Weights (`load`): an explicit path is read by the model's own format loader; without one, a
model with published weights (`source`) finds them in the caches or downloads them (see
`weights`), and a model without (the shapes zoo) gets seeded random weights. `pretrained=False`
or the path "random" gives random weights for any model (tests, shape checks).
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn

from ..core.cli import UserError
from ..core.units import LayerSpec
from .hooks import capture
from .weights import Source, resolve

GENERATOR = "generator"
DISCRIMINATIVE = "discriminative"
RANDOM = "random"  # the weights "path" that asks for random weights
RANDOM_WEIGHTS_SEED = 0

# generate(model, z, class_index, truncation) -> images in [-1, 1], [batch, 3, h, w]
Generate = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None", "float | None"],
                    torch.Tensor]


# ITU-R BT.601 luma, what Pillow's and OpenCV's RGB-to-grey conversions compute
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Preprocess:
    """How a discriminative model wants its input: size, resize mode, normalisation, and
    whether it sees one grey channel (`gray`: mean and std then have one value)."""

    size: int
    resize: str = "bilinear"  # a mode of F.interpolate: bilinear, bicubic, area, ...
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    gray: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.gray else 3

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] [batch, 3, h, w] (what generators give) -> model input."""
        x = images.float()
        if self.gray:
            luma = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
            x = (x * luma).sum(1, keepdim=True)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            corners = {} if self.resize in ("area", "nearest", "nearest-exact") else {
                "align_corners": False, "antialias": False}
            x = F.interpolate(x, size=(self.size, self.size), mode=self.resize,
                              **corners).clamp(-1, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return ((x + 1) / 2 - mean) / std


@dataclass(frozen=True)
class Latent:
    """A generator's latent space: z ~ N(0, I) of `dim`, or truncated as BigGAN samples it.

    `space` says where truncation acts: "z" (BigGAN: the sampler truncates z) or "w"
    (StyleGAN: z is always the plain normal and the generator truncates w, psi = truncation).
    """

    dim: int
    truncation: float | None = None  # default; None is the plain normal
    num_classes: int = 0  # > 0: class-conditional
    space: str = "z"

    def sample(self, seed: int, indices: Sequence[int], truncation: float | None = None
               ) -> torch.Tensor:
        """Latents [len(indices), dim] where row i depends only on (seed, indices[i]).

        With a truncation t, z = t * truncnorm(-2, 2) (BigGAN's truncation trick); in space
        "w" the truncation is the generator's business and z is the plain normal.
        """
        t = self.truncation if truncation is None else truncation
        if self.space == "w":
            t = None
        if t is not None:
            from scipy.stats import truncnorm  # costs a second of import; only BigGAN needs it
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
    channels_last: tuple[str, ...] = ()  # those of `layers` whose maps are [batch, h, w, C]
    preprocess: Preprocess | None = None  # discriminative models
    latent: Latent | None = None  # generators
    generate: Generate = _call_with_z  # generators
    # loads a weights file into the model, or returns the model the file describes
    load_weights: Callable[[nn.Module, Path], nn.Module | None] = load_state_dict_file
    weights_hint: str = ""  # how to obtain the weights file
    tags: tuple[str, ...] = ()
    source: Source | None = None  # published weights (caches, download); None: none
    class_names: Callable[[], Sequence[str]] | None = None  # class-conditional generators
    # the architecture at its own initialisation, where `build` loads weights (a user's
    # builder); None: `build` (what untrained twins are made from, `untrained`)
    fresh: Callable[[], nn.Module] | None = None

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
        size = self.preprocess.size
        return torch.zeros(batch, self.preprocess.channels, size, size)

    def class_index(self, name: str) -> int:
        """The class a name (any synonym of its description, or an index) stands for."""
        if self.latent is None or self.latent.num_classes == 0:
            raise UserError(f"{self.name} is not class-conditional; it has no class {name!r}")
        from .imagenet import resolve_class
        names = (self.class_names() if self.class_names is not None
                 else [str(i) for i in range(self.latent.num_classes)])
        return resolve_class(self.name, names, name)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
            truncation: float | None = None) -> tuple[torch.Tensor | None, dict]:
        """One forward pass: (generated images or None, {layer: [batch, C, s, s] maps})."""
        images = None
        with capture(model, self.layers, stop=self.kind == DISCRIMINATIVE,
                     channels_last=self.channels_last) as maps:
            if self.kind == GENERATOR:
                images = self.generate(model, x, y, truncation)
            else:
                model(x)
        return images, maps

    def layer_specs(self) -> list[LayerSpec]:
        """Hooked layers with channel counts and map sizes, from one shape-only forward pass
        (computed once per process)."""
        return list(_layer_specs(self))

    def _infer_layer_specs(self) -> tuple[LayerSpec, ...]:
        conditional = self.latent is not None and self.latent.num_classes > 0
        user = "user" in self.tags
        if not user:  # a user's model runs for real: meta kernels check no channel counts
            try:
                with torch.device("meta"):
                    model = self.build().eval()
                    y = torch.zeros(1, dtype=torch.long) if conditional else None
                    _, maps = self.run(model, self.example_input(), y)
                return _specs_of(maps)
            except (NotImplementedError, RuntimeError):  # an op without a meta kernel
                pass
        model = self.build().eval()
        y = torch.zeros(1, dtype=torch.long) if conditional else None
        try:
            with torch.no_grad():
                _, maps = self.run(model, self.example_input(), y)
        except Exception as err:
            if not user:  # a packaged model's failure is the package's bug
                raise
            shape = "latent.shape" if self.kind == GENERATOR else "input.size"
            raise UserError(f"{self.name}: its forward pass at the declared {shape} fails: "
                            f"{one_line(err)} (models.{self.name}: check layers and {shape})"
                            ) from err
        return _specs_of(maps)


def _specs_of(maps: dict[str, torch.Tensor]) -> tuple[LayerSpec, ...]:
    return tuple(LayerSpec(name, int(m.shape[1]), int(m.shape[-1])) for name, m in maps.items())


@cache
def _layer_specs(spec: ModelSpec) -> tuple[LayerSpec, ...]:
    return spec._infer_layer_specs()


_REGISTRY: dict[str, ModelSpec] = {}
_RESOLVERS: dict[str, Callable[[str], ModelSpec]] = {}  # "timm:" -> spec of "timm:NAME"
_RESOLVED: dict[str, ModelSpec] = {}
_PROVIDERS: list[str] = []  # modules that register models, imported on first need
_PROVIDED_BY: dict[str, str] = {}  # model name -> the provider module that registered it


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def register_resolver(prefix: str, resolver: Callable[[str], ModelSpec]) -> None:
    """Resolve every name that starts with `prefix` (e.g. "timm:") with `resolver(name)`."""
    _RESOLVERS[prefix] = resolver


def register_provider(module: str) -> None:
    """Import `module`, which registers models, only when first needed (a name not yet
    registered, or `names()`): a step that uses other models then neither imports it nor
    depends on its source, so the workflow does not rerun it when that source changes."""
    _PROVIDERS.append(module)


def _import_providers() -> bool:
    """Import the pending providers; whether there were any."""
    pending = bool(_PROVIDERS)
    while _PROVIDERS:
        module = _PROVIDERS.pop(0)
        before = set(_REGISTRY)
        importlib.import_module(module)
        _PROVIDED_BY.update(dict.fromkeys(set(_REGISTRY) - before, module))
    return pending


def provider(name: str) -> str:
    """The module whose code defines a registered model: its provider, or the package itself
    for the models registered when it is imported (the shapes zoo)."""
    _import_providers()
    return _PROVIDED_BY.get(name, __package__)


def names() -> list[str]:
    """Every registered model name, in registration order."""
    _import_providers()
    return list(_REGISTRY)


def get(name: str) -> ModelSpec:
    """The spec of a model; an unknown name is a user error that lists the known ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    for prefix, resolver in _RESOLVERS.items():
        if name.startswith(prefix):
            if name not in _RESOLVED:
                _RESOLVED[name] = resolver(name)
            return _RESOLVED[name]
    if _import_providers():
        return get(name)
    prefixes = "".join(f", {p}NAME" for p in _RESOLVERS)
    raise UserError(f"unknown model {name!r}; known models: {', '.join(names())}{prefixes}")


def one_line(err: Exception) -> str:
    """An error in one line: its first line, and the next when the first only introduces it
    ("Error(s) in loading state_dict for ResNet:"), at most 300 characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    text = " ".join(lines[:2]) if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text if len(text) <= 300 else text[:297] + "..."


def load(name: str, weights: str | Path | None = None, device: torch.device | str = "cpu",
         *, pretrained: bool = True) -> tuple[ModelSpec, nn.Module]:
    """Build a model with its weights, in eval mode on `device`.

    `weights`: a file (or, for BigGAN, a folder) read by the model's format loader; None: the
    published weights from the caches or a download (a `UserError` line when offline and not
    cached), or seeded random weights for a model without published ones (the shapes zoo);
    "random", or `pretrained=False` with no path: random weights, the same in every process.
    """
    spec = get(name)
    if weights is not None and str(weights) == RANDOM:
        weights, pretrained = None, False
    path = None if weights is None else Path(weights)
    if path is None and pretrained and spec.source is not None:
        path = resolve(name, spec.source)
    if path is not None and not path.exists():
        hint = f"; {spec.weights_hint}" if spec.weights_hint else ""
        raise UserError(f"{name}: weights file {path} not found{hint}")
    # Random weights are seeded, so that the steps of one run (sample, match, pages), each in
    # its own process, build the same model.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        model = spec.build()
    if path is not None:
        try:
            loaded = spec.load_weights(model, path)
        except (RuntimeError, OSError, ValueError, KeyError, EOFError, SafetensorError,
                pickle.UnpicklingError) as err:
            raise UserError(f"{name}: cannot load weights from {path}: {one_line(err)}"
                            ) from None
        model = model if loaded is None else loaded
    return spec, model.to(device).eval()
