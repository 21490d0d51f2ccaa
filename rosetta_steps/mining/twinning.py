"""An untrained twin's weights (`models.untrained`): D's architecture at seeded random weights,
its BatchNorm statistics re-estimated on the dictionary's own images (G's images of the run's
seed, or the data set's), so that mining it against G measures what the architecture alone
shares with G (issue 36's control).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from .. import models
from ..core.cli import UserError
from ..core.datasets import Dataset
from ..core.stores import atomic_output
from ..models.untrained import batchnorms, parse_twin, reestimate_batchnorm
from .sampling import anchored_batches, check_shard, check_source


def make_twin(gan: str, twin: str, weights: Mapping[str, str | Path], seed: int, start: int,
              count: int, batch_size: int, out: str | Path, truncation: float | None = None,
              device: torch.device | str = "cpu", subset: str = "all",
              data: Dataset | None = None) -> int:
    """Write twin `twin`'s weights (safetensors) to `out`, its BatchNorm statistics taken over
    images start .. start+count-1 of `gan` (or of `data`, anchored on `gan`); returns the
    number of BatchNorm layers re-estimated (0: no image is made)."""
    if parse_twin(twin) is None:
        raise UserError(f"--twin {twin}: not an untrained twin's name; a twin is named "
                        "twin<seed>:<model>, seeds from 1 (e.g. twin1:shapes-cnn-sup)")
    check_shard(start, count, batch_size)
    spec, model = models.load(twin, None, device)
    norms = 0
    if batchnorms(model):
        cls = check_source(gan, subset, data, start + count)
        g = models.load(gan, weights.get(gan), device)
        batches = (images.float() for _, _, images, _ in anchored_batches(
            g, seed, range(start, start + count), batch_size, truncation, cls, device,
            desc=f"{twin}: BatchNorm statistics", data=data))
        norms = reestimate_batchnorm(
            model, lambda m, images: m(spec.preprocess(images)), batches)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(out) as tmp:
        save_file(state, str(tmp), metadata={"twin": twin, "gan": gan, "subset": subset,
                                             "images": f"{start}..{start + count - 1}"})
    return norms

