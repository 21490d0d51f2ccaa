"""Read NVIDIA's network pickles (StyleGAN2-ADA / StyleGAN3 code) without running pickled code.

Those pickles hold `torch_utils.persistence` objects: each carries the source code of its
module, which the normal unpickler `exec`s to rebuild the class, plus the object's state
(`_parameters`, `_buffers`, `_modules`, constructor arguments and attributes). Here every
global the pickle names is looked up in a short allow-list instead of being imported:

- a persistent object becomes a `PersistentObject` holding its class name and state, and its
  source code is kept as text and never executed;
- tensors are rebuilt from their storages (`torch.load(weights_only=True)` on each storage's
  bytes), parameters become plain tensors;
- containers (OrderedDict, set, dnnlib's EasyDict as a dict) and NumPy scalars, dtypes and
  arrays are rebuilt by safe constructors;
- objects of plain (non-persistent) model classes, which pickle by class name, become
  `ModuleRecord`s of their state: torch's own modules (StyleGAN-XL's class embedding is an
  `nn.Embedding`) and the timm and projected-discriminator modules of StyleGAN-XL's `D`. The
  class is never imported: the record is a stand-in that only keeps the pickled state.

Any other global (`os.system`, `builtins.eval`, an arbitrary class) stops the load with
`pickle.UnpicklingError` before anything is called.
"""

from __future__ import annotations

import codecs
import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch


class PersistentObject:
    """A pickled persistent object: its class name and state; its code is never run."""

    def __init__(self, meta: dict) -> None:
        self.class_name = str(meta.get("class_name", "?"))
        self.state: dict = dict(meta.get("state") or {})
        self.module_src = str(meta.get("module_src", ""))  # kept as text only

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"

    def child(self, path: str) -> PersistentObject | None:
        """A submodule by dotted path ("synthesis.b4.conv1"), or None."""
        node = self
        for part in path.split("."):
            node = (node.state.get("_modules") or {}).get(part)
            if not isinstance(node, PersistentObject):
                return None
        return node

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer below this object, by dotted name (a state dict)."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for key, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor):
                    out[prefix + key] = value.detach()
        for key, module in (self.state.get("_modules") or {}).items():
            if isinstance(module, PersistentObject):
                out.update(module.tensors(f"{prefix}{key}."))
        return out


class ModuleRecord(PersistentObject):
    """An object of a plain model class (e.g. torch.nn.Embedding) pickled by class name:
    a record of its state; `record_of` names the class, which is never imported or run."""

    record_of = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__({"class_name": self.record_of})

    def __setstate__(self, state: Any) -> None:
        super().__init__({"class_name": self.record_of,
                          "state": state if isinstance(state, dict) else {}})


_RECORDED_MODULES = ("torch.nn.modules.", "timm.", "pg_modules.", "feature_networks.")


class _EasyDict(dict):
    """dnnlib.EasyDict, as a plain dict (attributes are not needed)."""


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None) -> torch.Tensor:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError("a tensor's storage is not a torch storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter's data is not a tensor")
    return data


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)  # torch's own safe loader


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("only plain NumPy scalars can be unpickled")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only plain NumPy arrays can be unpickled")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 writes bytes
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals from `_ALLOWED` only and refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_RECORDED_MODULES):
            return type(name, (ModuleRecord,), {"record_of": f"{module}.{name}"})
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            if module.startswith("dnnlib.tflib"):
                raise pickle.UnpicklingError(
                    "a TensorFlow network pickle (StyleGAN2's original code): convert it to "
                    "PyTorch first (rosinality's convert_weight.py)") from None
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a network pickle may only hold tensors, "
                "containers and NVIDIA's persistent objects") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent id in a network pickle")


def load_network_pickle(path: str | Path) -> Any:
    """Unpickle a network pickle safely: dicts, tensors and `PersistentObject`s."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f).load()
