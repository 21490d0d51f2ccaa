"""Checkpoints of the generator's long training run: a run that stops and goes on ends with
the same bytes as one that never stopped; a checkpoint that does not fit is one line."""

import json

import pytest
import torch

from rosetta_steps.core.cli import run
from rosetta_steps.train import main as train_main
from rosetta_steps.training import data
from rosetta_steps.training.resume import Checkpoint

GAN = ["shapes-gan", "--tiny", "--threads", "1"]


def _train(tmp_path, name: str, steps: int, *extra: str) -> int:
    return run(train_main, [*GAN, "--out", str(tmp_path / f"{name}.safetensors"),
                            "--steps", str(steps), *extra])


def test_a_run_that_stops_and_goes_on_ends_as_one_that_never_stopped(tmp_path):
    ckpt = tmp_path / "gan.ckpt"
    assert _train(tmp_path, "straight", 5) == 0
    # stop after 2 steps (saving every step), go on to 3 with a larger --steps, then to 5
    for steps in (2, 3, 5):
        assert _train(tmp_path, "resumed", steps, "--checkpoint", str(ckpt),
                      "--checkpoint-every", "1") == 0
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 5 and len(saved["d_losses"]) == 5
    assert ((tmp_path / "resumed.safetensors").read_bytes()
            == (tmp_path / "straight.safetensors").read_bytes())
    straight, resumed = (json.loads((tmp_path / f"{n}.json").read_text())
                         for n in ("straight", "resumed"))
    assert resumed["metrics"] == straight["metrics"]


def test_checkpoints_are_saved_every_few_steps_and_at_the_end(tmp_path, monkeypatch):
    steps_saved = []
    monkeypatch.setattr(Checkpoint, "save",
                        lambda self, model, settings, step, **state: steps_saved.append(step))
    assert _train(tmp_path, "w", 7, "--checkpoint", str(tmp_path / "c"),
                  "--checkpoint-every", "3") == 0
    assert steps_saved == [3, 6, 7]


def test_index_batches_go_on_from_their_state():
    """The batches after a restore are those the uninterrupted sequence draws."""
    straight = data.IndexBatches(10, 4, torch.Generator().manual_seed(0))
    expected = [next(straight).tolist() for _ in range(7)]
    first = data.IndexBatches(10, 4, torch.Generator().manual_seed(0))
    head = [next(first).tolist() for _ in range(3)]
    rng = first.generator.get_state()
    second = data.IndexBatches(10, 4, torch.Generator().set_state(rng))
    second.load_state_dict(first.state_dict())
    assert head + [next(second).tolist() for _ in range(4)] == expected
    assert all(len(set(b)) == 4 for b in expected)  # 10 // 4 = 2 batches per epoch, no repeats


@pytest.mark.parametrize("extra, message", [
    (["--lr", "1e-3"], "was trained with lr 0.0002 (asked 0.001)"),
    (["--steps", "1"], "is at step 2, past --steps 1; ask for at least 2 steps"),
    (["--model", "shapes-cnn-sup"], "applies to shapes-gan, whose training takes hours"),
    (["--junk"], "is not a training checkpoint"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
])
def test_a_checkpoint_that_does_not_fit_is_one_line(extra, message, tmp_path, capsys):
    ckpt = tmp_path / "gan.ckpt"
    assert _train(tmp_path, "first", 2, "--checkpoint", str(ckpt)) == 0
    if extra == ["--junk"]:
        ckpt.write_bytes(b"not a checkpoint")
        extra = []
    before = ckpt.read_bytes()
    capsys.readouterr()
    args = [*GAN, "--out", str(tmp_path / "again.safetensors"), "--checkpoint", str(ckpt)]
    if extra[:1] == ["--model"]:
        args[0], extra = extra[1], []
    code = run(train_main, [*args, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert ckpt.read_bytes() == before and not (tmp_path / "again.safetensors").exists()
