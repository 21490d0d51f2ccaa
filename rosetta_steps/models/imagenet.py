"""Class names of class-conditional generators: an ImageNet class by any of its names.

ImageNet-1k's class descriptions come with timm (`timm.data.ImageNetInfo`), no download: e.g.
class 1 is "goldfish, Carassius auratus", 497 "church, church building". A class is named by
any comma-separated synonym of its description, case-insensitively, with spaces or
underscores ("great_white_shark"), or by its decimal index.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from functools import cache

from ..core.cli import UserError


@cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class descriptions, in class-index order."""
    from timm.data import ImageNetInfo
    return tuple(ImageNetInfo().label_descriptions())


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("_", " ")).strip().lower()


def resolve_class(model: str, descriptions: Sequence[str], query: str) -> int:
    """The class index that `query` names; an unknown or ambiguous name is a `UserError`."""
    text = _norm(str(query))
    if text.isdecimal():
        index = int(text)
        if index < len(descriptions):
            return index
        raise UserError(f"{model}: class index {index} out of range 0..{len(descriptions) - 1}")
    synonyms: dict[str, list[int]] = {}
    for index, description in enumerate(descriptions):
        for name in description.split(","):
            synonyms.setdefault(_norm(name), []).append(index)
    found = synonyms.get(text, [])
    if len(found) == 1:
        return found[0]
    if found:
        options = ", ".join(f"{i} ({descriptions[i]})" for i in found)
        raise UserError(f"{model}: class name {query!r} is ambiguous: {options}; give the index")
    close = difflib.get_close_matches(text, list(synonyms), n=3, cutoff=0.7)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UserError(f"{model}: unknown class {query!r}{hint} (a class name or an index "
                    f"0..{len(descriptions) - 1})")
