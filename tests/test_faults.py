"""Faults a user meets, driven through the step commands: each ends in one line on stderr, a
non-zero exit and nothing on disk that looks complete (issue 23's table, the rows done so far:
non-finite values, damaged or mixed shards, missing chunks, empty and hostile weights files,
a full disk and a killed writer's temporaries, `dvc repro` on an edited params.yaml)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
import zarr
from safetensors.torch import save_file
from workflow_project import (
    DISCS,
    dvc_stages,
    files,
    make_project,
    sh,
    tiny_params,
    write_params,
)

from rosetta_steps import bestbuddies, match, models, reduce
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.stores import atomic_output, write_text
from rosetta_steps.inversion import perceptual
from rosetta_steps.mining.buddies import best_buddies

GAN, DISC = "shapes-gan", "shapes-cnn-sup"


def one_line(capsys, *needles: str) -> str:
    """The step's one error line (progress bars may share stderr), and no traceback."""
    err = capsys.readouterr().err
    lines = [line.rsplit("\r", 1)[-1] for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def shard(tmp_path, name: str, start: int = 0, count: int = 4, seed: int = 0, *extra: str):
    out = tmp_path / name
    assert run(match.main, ["--gan", GAN, "--disc", DISC, "--weights", f"{GAN}=random",
                            "--weights", f"{DISC}=random", "--start", str(start), "--count",
                            str(count), "--batch-size", "4", "--seed", str(seed), "--device",
                            "cpu", *extra, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two shards of a (G, D) pair and their match store."""
    folder = tmp_path_factory.mktemp("pair")
    shards = [shard(folder, "a.zarr", 0), shard(folder, "b.zarr", 4)]
    assert run(reduce.main, [*map(str, shards), "--out", str(folder / "m.zarr")]) == 0
    return folder


def copy(src, dst):
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


def chunk_files(store, array: str) -> list:
    return sorted(p for p in (store / array / "c").rglob("*") if p.is_file())


def test_a_nan_activation_stops_the_match_naming_the_unit(tmp_path, capsys):
    spec = models.get(GAN)
    state = spec.build().state_dict()
    state["stem.conv.weight"][:, 3] = float("nan")  # ConvTranspose: [in, out, k, k]
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "nan.safetensors"))
    argv = ["--gan", GAN, "--disc", DISC, "--weights", f"{GAN}={tmp_path / 'nan.safetensors'}",
            "--count", "4", "--device", "cpu", "--out", str(tmp_path / "s.zarr")]
    assert run(match.main, argv) == 2
    one_line(capsys, "shapes-gan layer stem.act unit 3 is not finite on image 0")
    assert leftovers(tmp_path) == ["nan.safetensors"]


def test_a_missing_chunk_of_a_match_store_is_refused(pair, tmp_path, capsys):
    store = copy(pair / "m.zarr", tmp_path / "m.zarr")
    chunk_files(store, "corr")[0].unlink()
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(store), "--k", "3", "--out", str(out)]) == 2
    one_line(capsys, str(store), "is incomplete", "(array corr) is missing")
    assert not out.exists() and leftovers(tmp_path) == ["m.zarr"]


def test_a_truncated_chunk_is_one_line(pair, tmp_path, capsys):
    store = copy(pair / "m.zarr", tmp_path / "m.zarr")
    chunk = chunk_files(store, "corr")[0]
    chunk.write_bytes(chunk.read_bytes()[:-10])
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(store), "--k", "3", "--out", str(out)]) == 2
    one_line(capsys, str(store), "(array corr) is", "bytes, not")
    assert not out.exists()


def test_a_store_of_a_users_own_tool_needs_only_the_documented_fields(pair, tmp_path, capsys):
    """No `kind`, no file list: a match store with the README's fields is read; its NaN is
    still refused before it could reach a best-buddy list."""
    ds = xr.open_zarr(pair / "m.zarr", consolidated=False).load()
    ds.attrs = {k: ds.attrs[k] for k in ("gan", "disc", "n_images")}
    ds.to_zarr(tmp_path / "own.zarr", zarr_format=3, consolidated=False)
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(tmp_path / "own.zarr"), "--k", "3", "--out", str(out)]) == 0
    assert out.exists()
    ds["corr"][0, 0] = np.nan
    ds.to_zarr(tmp_path / "nan.zarr", zarr_format=3, consolidated=False)
    assert run(bestbuddies.main, [str(tmp_path / "nan.zarr"), "--k", "3", "--out",
                                  str(tmp_path / "nan.csv")]) == 2
    one_line(capsys, "corr is not finite at (0, 0)")


@pytest.mark.parametrize("damage", ["chunk", "array"])
def test_a_damaged_shard_is_refused_by_reduce(pair, tmp_path, capsys, damage):
    a = copy(pair / "a.zarr", tmp_path / "a.zarr")
    if damage == "chunk":
        chunk_files(a, "cross")[0].unlink()
    else:
        subprocess.run(["rm", "-r", str(a / "cross")], check=True)
    out = tmp_path / "m.zarr"
    assert run(reduce.main, [str(a), str(pair / "b.zarr"), "--out", str(out)]) == 2
    one_line(capsys, str(a), "is incomplete", "(array cross) is missing")
    assert not out.exists()


def test_reduce_refuses_overlapping_and_mixed_shards(pair, tmp_path, capsys):
    out = tmp_path / "m.zarr"
    a = pair / "a.zarr"
    assert run(reduce.main, [str(a), str(a), "--out", str(out)]) == 2
    one_line(capsys, "overlap (images 0..3 twice)")
    other_seed = shard(tmp_path, "seed1.zarr", 4, 4, 1)
    assert run(reduce.main, [str(a), str(other_seed), "--out", str(out)]) == 2
    one_line(capsys, "come from different runs", str(other_seed))
    assert not out.exists()


def test_reduce_refuses_shards_that_miss_or_exceed_the_images_named(pair, tmp_path, capsys):
    out, a, b = tmp_path / "m.zarr", str(pair / "a.zarr"), str(pair / "b.zarr")
    assert run(reduce.main, [b, "--images", "12", "--out", str(out)]) == 2
    one_line(capsys, "do not hold images 0..11 exactly: images 0..3, 8..11 have no shard")
    assert run(reduce.main, [a, b, "--images", "6", "--out", str(out)]) == 2
    one_line(capsys, "do not hold images 0..5 exactly: images 6..7 are beyond them")
    assert not out.exists()
    assert run(reduce.main, [b, a, "--images", "8", "--out", str(out)]) == 0
    assert xr.open_zarr(out).attrs["n_images"] == 8


def test_a_shard_without_its_attrs_is_one_line(pair, tmp_path, capsys):
    a = copy(pair / "a.zarr", tmp_path / "a.zarr")
    group = zarr.open_group(str(a), mode="r+")
    attrs = dict(group.attrs)
    del attrs["n_images"]
    group.attrs.clear()
    group.attrs.update(attrs)
    assert run(reduce.main, [str(a), "--out", str(tmp_path / "m.zarr")]) == 2
    one_line(capsys, str(a), "does not hold what its attrs say")


def test_an_empty_weights_file_is_one_line(tmp_path, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    argv = ["--gan", GAN, "--weights", f"{GAN}={tmp_path / 'empty.pt'}", "--count", "2",
            "--device", "cpu", "--out", str(tmp_path / "s.zarr")]
    assert run(match.main, argv) == 2
    one_line(capsys, "cannot load weights from")


def test_best_buddies_refuse_a_nan():
    corr = np.eye(4)
    corr[1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        best_buddies(corr, k=1)


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_text", full)
    with pytest.raises(UserError, match="no space left on the device writing .*page.html"):
        write_text(tmp_path / "page.html", "<html>")
    assert leftovers(tmp_path) == []


def test_a_killed_writers_temporaries_go_with_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with atomic_output(tmp_path / "x.txt") as tmp:  # learn this host's temporary names
        host = tmp.name.split("-")[1]
        tmp.write_text("1")
    stale = tmp_path / f".x.txt.tmp-{host}-{dead}-0123abcd"
    stale.mkdir()
    live = tmp_path / f".x.txt.tmp-{host}-{os.getpid()}-0123abcd"
    live.mkdir()
    write_text(tmp_path / "x.txt", "2")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "x.txt").read_text() == "2"


class Payload:
    """Unpickling this creates a marker file: what a hostile weights file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_alexnet_in_the_cache_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = perceptual.alexnet_weights()
    path.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    with open(path, "wb") as f:
        pickle.dump({"features.0.weight": Payload(marker)}, f)
    perceptual._network.cache_clear()
    with pytest.raises(UserError, match="is not a plain AlexNet state dict"):
        perceptual.lpips_distance(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    assert not marker.exists()


def test_two_writers_of_one_store_never_mix(tmp_path, monkeypatch):
    """Another run puts its store at the path between this writer's two renames: that complete
    store stands, this writer refuses in one line, and nothing of the two is mixed."""
    target = tmp_path / "s.zarr"
    target.mkdir()
    (target / "old").write_text("first run")
    real = type(tmp_path).rename

    def racing(self, dest):
        moved = real(self, dest)
        if self == target:  # the other run lands its store right now
            target.mkdir()
            (target / "other").write_text("other run")
        return moved

    monkeypatch.setattr(type(tmp_path), "rename", racing)
    with pytest.raises(UserError, match="another run wrote .*s.zarr at the same time"):
        with atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "mine").write_text("this run")
    assert leftovers(target) == ["other"] and leftovers(tmp_path) == ["s.zarr"]


def test_the_later_writer_of_a_file_wins(tmp_path):
    with atomic_output(tmp_path / "t.csv") as first:
        first.write_text("first")
        write_text(tmp_path / "t.csv", "second")
    assert (tmp_path / "t.csv").read_text() == "first" and leftovers(tmp_path) == ["t.csv"]


def test_dvc_repro_runs_params_yaml_now_and_refuses_a_stale_dvc_yaml(tmp_path):
    """A setting that only reaches a command reaches it through DVC's `${...}`: `dvc repro`
    after an edit runs the new value. A change to the stages (more images) stops `dvc repro`
    at its first stage in one line, before any other stage runs; `make dvc.yaml` mends it
    without rerunning what did not change."""
    params = tiny_params(DISCS)
    project = make_project(tmp_path / "p", params)
    (project / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))
    sh(project, "dvc", "init", "--no-scm", "-q")
    stage, metrics = "train--shapes-cnn-sup", project / "results/zoo/trained/shapes-cnn-sup.json"
    sh(project, "dvc", "repro", "-q", stage)
    assert json.loads(metrics.read_text())["settings"]["steps"] == 3

    params["zoo"]["models"]["shapes-cnn-sup"]["steps"] = 4
    write_params(project, params)
    sh(project, "dvc", "repro", "-q", stage)
    assert json.loads(metrics.read_text())["settings"]["steps"] == 4
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"][stage]
    assert " --steps 4 " in lock["cmd"]
    assert lock["params"]["params.yaml"]["zoo.models.shapes-cnn-sup"]["steps"] == 4

    params["dictionaries"]["shapes"]["images"] = 96
    write_params(project, params)
    lock, results = (project / "dvc.lock").read_text(), files(project / "results/zoo")
    out = sh(project, "dvc", "repro", check=False)
    assert out.returncode != 0
    assert [line for line in out.stderr.splitlines() if "stale" in line] == [
        "dvc.yaml is stale: params.yaml, the rules or the code changed the stages; "
        "run `make dvc.yaml`, then `dvc repro` again"]
    assert (project / "dvc.lock").read_text() == lock
    assert files(project / "results/zoo") == results
    assert not (project / dvc_stages.CHECK_STAMP).exists()

    (project / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))
    sh(project, "dvc", "repro", "-q", dvc_stages.CHECK_STAGE)
    assert "up to date" in sh(project, "dvc", "status", stage).stdout


@pytest.mark.parametrize("mistake, line", [
    (lambda p: p["dictionaries"]["shapes"]["discs"].append("shapes-cnn-supp"),
     "params.yaml: dictionaries.shapes.discs: unknown model 'shapes-cnn-supp'; known models: "
     "shapes-gan, shapes-cnn-sup, "),
    (lambda p: p["dictionaries"]["shapes"].update(gan="shapes-cnn-ssl", discs=["shapes-cnn-sup"]),
     "params.yaml: dictionaries.shapes.gan: shapes-cnn-ssl is a discriminative model; "
     "name a generator one"),
    (lambda p: p["models"].update({"resnet5": {"weights": None}}),
     "params.yaml: models.resnet5: unknown model 'resnet5'; known models: "),
    ("k: [3\nseed: 0\n", "params.yaml: line 2, column 5: expected ',' or ']', but got ':'"
     " (not valid YAML)"),
])
def test_a_mistake_in_params_yaml_stops_snakemake_before_any_job(tmp_path, mistake, line):
    """A model name the registry lacks, or a generator's place given to a discriminative
    model, is found before the zoo trains; a YAML syntax error names its line and column."""
    params = tiny_params(DISCS)
    project = make_project(tmp_path / "p", params)
    if isinstance(mistake, str):
        (project / "params.yaml").write_text(mistake)
    else:
        mistake(params)
        write_params(project, params)
    out = sh(project, "snakemake", "--cores", "1", check=False)
    assert out.returncode != 0
    lines = [x for x in out.stderr.splitlines() if x.startswith("params.yaml")]
    assert len(lines) == 1 and lines[0].startswith(line), out.stderr
    assert not (project / "results").exists()
