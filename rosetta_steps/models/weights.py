"""Where a model's published weights live, and finding them: the caches, then a download.

A model's `Source` lists the files its weights come in, as alternatives (e.g. a converted
checkpoint or NVIDIA's pickle), each one or more files:

- `HubFile`: a file of a Hugging Face Hub repository (timm, open_clip), cached where
  huggingface_hub caches it: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
  `~/.cache/huggingface/hub`;
- `UrlFile`: a file fetched from a URL into torch's hub folder, `$TORCH_HOME/hub/checkpoints`
  (default `~/.cache/torch/hub/checkpoints`), where `torch.hub.load_state_dict_from_url` puts
  it too; a file with no public URL must be put there by hand (its `note` says where to get it).

`resolve` finds the weights of a model in that order (an explicit path, which the registry
handles, comes before both): the first alternative whose files are all cached, else a download
of the first alternative that can be downloaded. Offline with nothing cached it raises one
`UserError` line naming the model, the file expected, where to put it and the fetch command.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import torch

from ..core.cli import UserError

FETCH = "python -m rosetta_steps.models fetch"


def hf_cache_dir() -> Path:
    """The Hugging Face Hub cache folder, read from the environment at each call."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home) / "hub"


def torch_checkpoints_dir() -> Path:
    """torch's hub checkpoint folder: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def check_network(url: str) -> None:
    """Fail fast (OSError) when `url`'s host cannot be reached, instead of the libraries'
    retries; skipped behind a proxy, where only the proxy can tell."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    host = urlsplit(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=10).close()
    except OSError as err:
        raise OSError(f"no network connection to {host} ({err.strerror or err})") from None


def _hf_download(repo_id: str, filename: str, cache_dir: Path) -> Path:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise OSError("HF_HUB_OFFLINE is set")
    check_network("https://huggingface.co")
    from huggingface_hub import hf_hub_download
    return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))


def _url_download(url: str, dest: Path) -> None:
    check_network(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dest), progress=True)


@dataclass(frozen=True)
class HubFile:
    """A file of a Hugging Face Hub repository; `filenames` are alternatives, preferred first."""

    repo_id: str
    filenames: tuple[str, ...]

    def cached(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache
        for name in self.filenames:
            found = try_to_load_from_cache(self.repo_id, name, cache_dir=hf_cache_dir())
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
        return None

    def download(self) -> Path:
        error: Exception | None = None
        for name in self.filenames:
            try:
                return _hf_download(self.repo_id, name, hf_cache_dir())
            except OSError as err:  # no network: the other names will not download either
                raise OSError(_reason(err)) from None
            except Exception as err:  # the hub's errors, e.g. a file it does not have
                error = err
        raise OSError(_reason(error))

    def expected(self) -> str:
        return (f"{self.filenames[0]} of the Hugging Face repository {self.repo_id} in "
                f"{hf_cache_dir()} (set HF_HOME to move it)")


@dataclass(frozen=True)
class UrlFile:
    """A file in $TORCH_HOME/hub/checkpoints[/subdir], downloaded from `url` when it has one."""

    filename: str
    url: str | None = None
    subdir: str = ""
    note: str = ""  # where to get the file when there is no URL

    @property
    def path(self) -> Path:
        return torch_checkpoints_dir() / self.subdir / self.filename

    def cached(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def download(self) -> Path:
        if self.url is None:
            raise OSError(f"no public download ({self.note})" if self.note
                          else "no public download")
        _url_download(self.url, self.path)
        return self.path

    def expected(self) -> str:
        return f"{self.path} (set TORCH_HOME to move it)"


File = HubFile | UrlFile


@dataclass(frozen=True)
class Source:
    """A model's published weights: alternatives, each a tuple of files loaded together.

    With `folder=True` the loader gets the folder of the files (BigGAN: config.json and
    pytorch_model.bin), otherwise the first file.
    """

    options: tuple[tuple[File, ...], ...]
    folder: bool = False

    def _entry(self, paths: list[Path]) -> Path:
        return paths[0].parent if self.folder else paths[0]

    def cached(self) -> Path | None:
        """The weights path when every file of some alternative is cached, else None."""
        for files in self.options:
            paths = [f.cached() for f in files]
            if all(p is not None for p in paths):
                return self._entry(paths)
        return None

    def expected(self) -> str:
        return " or ".join(" and ".join(f.expected() for f in files) for files in self.options)


def _reason(err: BaseException | None) -> str:
    text = str(err).strip().splitlines()[0] if err is not None and str(err).strip() else ""
    return text or (type(err).__name__ if err is not None else "unknown error")


def resolve(name: str, source: Source) -> Path:
    """A model's weights: the cache, else a download; a failure is one `UserError` line."""
    cached = source.cached()
    if cached is not None:
        return cached
    reasons = []
    for files in source.options:
        try:
            paths = [f.cached() or f.download() for f in files]
        except Exception as err:  # any network or hub error: one line
            reasons.append(_reason(err))
            continue
        return source._entry(paths)
    todo = (f"fetch them on a connected machine with `{FETCH} {name}` and copy the cache"
            if any(all(getattr(f, "url", True) for f in files) for files in source.options)
            else "put the file there")
    raise UserError(f"{name}: pretrained weights not cached and not downloadable "
                    f"({'; '.join(reasons)}); expected {source.expected()}; {todo}, or pass "
                    "the file as the model's weights path (params.yaml)")

