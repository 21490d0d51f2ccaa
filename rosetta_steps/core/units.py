"""The names the pipeline's stores and tables give to what it mines: a hooked layer
(`LayerSpec`), one unit of one model (`Unit`, a channel of a hooked layer, paper Sec. 3), and
the subset of an unconditional generator (`ALL`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ALL = "all"  # the subset of an unconditional generator; class-conditional ones name a class


@dataclass(frozen=True)
class LayerSpec:
    """A hooked layer: its name, channel count and (square) map size."""

    name: str
    channels: int
    size: int


def unit_count(specs: Iterable[LayerSpec]) -> int:
    """The units of a layer layout: all its channels."""
    return sum(s.channels for s in specs)


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of one model: a channel of a hooked layer."""

    model: str
    layer: str
    channel: int

    @property
    def label(self) -> str:
        return f"{self.layer}:{self.channel}"
