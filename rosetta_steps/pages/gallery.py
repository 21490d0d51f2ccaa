"""The sampled images of one generator and subset (or anchor and data set), read back from the
sample stores of its shards (`mining.sampling` writes them): pixels, latents and classes by
image id, and the images where given G units are most active, ranked by the stored spatial
means normalised with the mining statistics (Eq. 1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..core.cli import UserError
from ..core.stores import layer_names, open_store
from ..core.units import Unit


class Samples:
    """The sampled images of one generator and subset, across the shards' sample stores."""

    def __init__(self, paths: Sequence[str | Path]):
        if not paths:
            raise UserError("no sample stores given (--samples)")
        self.stores = [open_store(p, "samples", "sample store") for p in paths]
        keys = {(ds.attrs.get("gan"), ds.attrs.get("subset"), str(ds.attrs.get("seed")),
                 str(ds.attrs.get("truncation"))) for ds in self.stores}
        if len(keys) > 1:
            raise UserError(f"sample stores come from different runs (gan, subset, seed, "
                            f"truncation): {sorted(keys)}; give the shards of one run")
        first = self.stores[0].attrs
        self.gan, self.subset, self.seed = first["gan"], first["subset"], int(first["seed"])
        self.dataset: str | None = first.get("dataset")  # images of a data set, no latents
        trunc = first.get("truncation", "default")
        self.truncation = None if trunc == "default" else float(trunc)
        self.ids = np.concatenate([ds["image"].values for ds in self.stores]).astype(np.int64)
        if len(np.unique(self.ids)) != len(self.ids):
            raise UserError("sample stores overlap (an image index appears twice): "
                            "give each shard once")
        self._where = {int(i): (s, p) for s, ds in enumerate(self.stores)
                       for p, i in enumerate(ds["image"].values)}
        ds = self.stores[0]
        self.units = [Unit(self.gan, str(la), int(c))
                      for la, c in zip(layer_names(ds, "gan"), ds["gan_channel"].values,
                                       strict=True)]
        self.column = {u: i for i, u in enumerate(self.units)}
        self._cache: dict[str, dict[int, np.ndarray]] = {}
        self.activation = np.concatenate([np.asarray(d["activation"].values, dtype=np.float32)
                                          for d in self.stores])

    def __len__(self) -> int:
        return len(self.ids)

    def _gather(self, name: str, ids: Sequence[int]) -> np.ndarray:
        """Rows of variable `name` for image ids, read once per store (chunks decode once)."""
        cache = self._cache.setdefault(name, {})
        todo: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i in sorted({int(i) for i in ids} - cache.keys()):
            if i not in self._where:
                raise UserError(f"image {i} is in no sample store given")
            s, p = self._where[i]
            todo[s].append((p, i))
        for s, items in todo.items():
            rows = np.asarray(self.stores[s][name].isel(image=[p for p, _ in items]).values)
            cache.update({i: row for (_, i), row in zip(items, rows, strict=True)})
        return np.stack([cache[int(i)] for i in ids])

    def pixels(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("pixels", ids)

    def latents(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("latent", ids)

    def classes(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("class_index", ids)

    def scores(self, units: Sequence[Unit], stats: Mapping[Unit, tuple[float, float]]
               ) -> np.ndarray:
        """Per image, the mean over `units` of their normalised spatial mean activation."""
        missing = [u for u in units if u not in self.column]
        if missing:
            raise UserError(f"G unit {missing[0].label} is not in the sample stores: were they "
                            f"sampled from the generator ({self.gan}) that was mined?")
        cols = [self.column[u] for u in units]
        mean = np.array([stats[u][0] for u in units], dtype=np.float64)
        std = np.array([stats[u][1] for u in units], dtype=np.float64)
        z = (self.activation[:, cols] - mean) / np.where(std > 0, std, 1.0)
        return z.mean(axis=1)

    def top_images(self, units: Sequence[Unit], stats: Mapping[Unit, tuple[float, float]],
                   n: int) -> list[int]:
        """The `n` images where `units` are most active (ties: lower image index first)."""
        order = np.lexsort((self.ids, -self.scores(units, stats)))
        return [int(i) for i in self.ids[order[:n]]]
