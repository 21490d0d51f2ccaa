"""Dictionaries anchored on a data set through the workflow: a folder of images (written here)
mined with a discriminative anchor in G's role up to its dictionary page; adding files or a D
reruns only what they change; every bad declaration stops with one line and leaves nothing."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from PIL import Image
from workflow_project import (
    dvc_stages,
    job_counts,
    make_project,
    planned_jobs,
    snakemake,
    tiny_params,
    write_params,
)

from rosetta_steps.core import world

PAGE = "results/dictionary/real.html"
ANCHOR, DISC = "shapes-cnn-sup", "shapes-cnn-ssl"
SHARDS = ["000000-000032", "000032-000064"]


def write_images(folder, start: int, stop: int) -> None:
    """The shapes world's images start .. stop-1 as PNGs of varied sizes (names sort in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(world.render(stop - start, 7, start=start).images, start):
        Image.fromarray(pixels).resize((64 + i % 3 * 8, 64)).save(folder / f"img_{i:03d}.png")


def real_params(images: int = 64, discs: tuple = (DISC,), **dataset) -> dict:
    params = tiny_params([DISC])
    params["datasets"]["real"] = {"folder": "images", "size": 64, **dataset}
    params["dictionaries"]["real"] = {"dataset": "real", "anchor": ANCHOR, "discs": list(discs),
                                      "images": images}
    return params


def stores(jobs: list[dict]) -> set[str]:
    return {o for job in jobs for o in job["output"]}


@pytest.mark.slow
def test_a_folder_is_mined_to_its_dictionary_and_reruns_only_what_changes(tmp_path):
    project = make_project(tmp_path / "p", real_params())
    write_images(project / "images", 0, 64)
    # Links that lead to no image are counted on the console, in the job logs and on the page.
    (project / "images/gone.png").symlink_to("missing.png")
    (project / "images/<b>loop.png").symlink_to("<b>loop.png")
    note = ("skipped 2 links under images that lead to no image file: 1 dangling (gone.png); "
            "1 in a loop (<b>loop.png)")
    # and a step run by the workflow tells the console where its log is (after 0 s here)
    run = snakemake(project, PAGE, extra_env={"ROSETTA_NOTE_AFTER": "0"})
    assert f"note: params.yaml: datasets.real: {note}" in run.stderr
    assert ("rosetta dictionary: still running after 0 s; its progress is in "
            "logs/dictionary--real.log") in run.stderr
    logs = [p.read_text() for p in (project / "logs").glob("match--*--real--*.log")]
    assert logs and all(f"note: {note}" in text for text in logs)
    page = (project / PAGE).read_text()
    assert f"Anchor {ANCHOR} (in the generator" in page and "on data set real" in page
    assert f"<b>Note:</b> {note.replace('<b>', '&lt;b&gt;')}" in page
    (project / "images/gone.png").unlink()
    (project / "images/<b>loop.png").unlink()
    assert job_counts(project, PAGE) == {"dictionary": 1}  # the page alone, without the note
    snakemake(project, PAGE)
    assert "Note:" not in (project / PAGE).read_text()
    concepts = pd.read_csv(project / "results/rosetta/real.csv")
    assert set(concepts.model) <= {ANCHOR, DISC} and ANCHOR in set(concepts.model)
    pair = f"results/match/{ANCHOR}/real/{DISC}/matches.zarr"
    assert (project / pair).is_dir()
    assert (project / f"results/datasets/real/{SHARDS[1]}.tsv").read_text().startswith(
        "img_032.png\t")
    assert job_counts(project, PAGE) == {}

    # Files beyond the images mined change nothing; raising the count mines only new shards.
    write_images(project / "images", 64, 96)
    assert job_counts(project, PAGE) == {}
    write_params(project, real_params(images=96))
    jobs = [j for j in planned_jobs(project, PAGE) if j["rule"] != "all"]
    mined = {o for j in jobs if j["rule"].startswith(("match", "sample")) for o in j["output"]}
    assert mined and all("000064-000096" in o for o in mined)
    assert {j["rule"] for j in jobs} == {"match_fused_shapes_cnn_sup_real", "reduce",
                                         "bestbuddies", "stability", "rosetta", "dictionary"}

    # A file changed inside a shard reruns that shard only.
    write_params(project, real_params())
    assert job_counts(project, PAGE) == {}
    Image.new("RGB", (50, 70), (200, 10, 10)).save(project / "images/img_040.png")
    mined = {o for j in planned_jobs(project, PAGE) if j["rule"].startswith(("match", "sample"))
             for o in j["output"]}
    assert mined and all(SHARDS[1] in o for o in mined), mined
    snakemake(project, PAGE)

    # A D added to the dictionary computes only its own pair.
    write_params(project, real_params(discs=(DISC, "shapes-vit-mae")))
    jobs = planned_jobs(project, PAGE)
    matched = {o for j in jobs if j["rule"].startswith("match") for o in j["output"]}
    assert matched == {f"results/match/{ANCHOR}/real/shapes-vit-mae/shards/{s}.zarr"
                       for s in SHARDS}
    assert not any(DISC in o for o in stores(jobs))


@pytest.mark.slow
def test_bad_data_sets_stop_with_one_line_and_leave_nothing(tmp_path):
    project = make_project(tmp_path / "p", real_params())
    write_images(project / "images", 0, 40)

    def lines(params: dict) -> list[str]:
        write_params(project, params)
        out = snakemake(project, "--dry-run", PAGE, check=False)
        assert out.returncode != 0
        return [line for line in out.stderr.splitlines() if line.startswith("params.yaml")]

    assert lines(real_params()) == ["params.yaml: datasets.real: data set images has 40 images "
                                    "(any image suffix), fewer than the 64 asked for"]
    assert lines(real_params(images=32, glob="*.JPEG")) == [
        "params.yaml: datasets.real: no image files in images match *.JPEG"]
    assert lines(real_params(images=32, folder="elsewhere")) == [
        "params.yaml: datasets.real: data set folder elsewhere not found"]
    params = real_params(images=32)
    params["dictionaries"]["real"]["dataset"] = "unreal"
    assert lines(params) == ["params.yaml: dictionaries.real.dataset: no data set 'unreal' under "
                             "datasets: (declared: shapes-real, real)"]
    params = real_params(images=32)
    params["dictionaries"]["real"]["anchor"] = "shapes-gan"
    assert lines(params) == ["params.yaml: dictionaries.real.anchor: shapes-gan is a generator "
                             "model; name a discriminative one"]
    params = real_params(images=32)
    params["dictionaries"]["real"]["gan"] = "shapes-gan"
    assert lines(params) == ["params.yaml: dictionaries.real: give either gan: (a generator) or "
                             "dataset: and anchor: (a data set and its model)"]
    assert lines(real_params(images=32, world="shapes")) == [
        "params.yaml: datasets.real: declare {world: shapes} or {folder: PATH, glob: PATTERN, "
        "size: PIXELS} (glob and size optional)"]
    params = real_params(images=32)
    params["inversion"]["dictionary"] = "real"
    assert lines(params) == ["params.yaml: inversion.dictionary: real is anchored on a data set; "
                             "inversion and edits need a generator, so name a dictionary with "
                             "gan:"]

    assert lines(real_params(images=32, glob="/abs/*.png")) == [
        "params.yaml: datasets.real: glob /abs/*.png is absolute: give it relative to the "
        "folder images, e.g. **/*.JPEG"]

    # A file list that cannot be written (here a folder stands in its way; a full disk alike)
    # stops the plan in one line, and no temporary is left beside it.
    write_params(project, real_params(images=32))
    blocked = project / f"results/datasets/real/{SHARDS[0]}.tsv"
    blocked.mkdir(parents=True)
    out = snakemake(project, "--dry-run", PAGE, check=False)
    assert out.returncode != 0
    assert f"cannot write the file list {blocked.relative_to(project)}: " in out.stderr, \
        out.stderr
    assert [p.name for p in blocked.parent.iterdir()] == [blocked.name]
    blocked.rmdir()

    # An unreadable image stops its job with one line on the terminal, and nothing is left.
    png = (project / "images/img_005.png").read_bytes()
    (project / "images/img_005.png").write_bytes(png[: len(png) // 2])
    target = f"results/samples/{ANCHOR}/real/{SHARDS[0]}.zarr"  # made by the fused match job
    out = snakemake(project, target, check=False)
    assert out.returncode != 0
    assert any(line.startswith("rosetta match: error: cannot read image ")
               and "img_005.png" in line for line in out.stderr.splitlines()), out.stderr
    assert not (project / target).exists() and not (project / "results/match").exists()


def test_dvc_stages_of_a_data_set_depend_on_its_file_lists_and_the_check_on_its_folder(
        tmp_path):
    params = real_params()
    params["dictionaries"]["real"]["default"] = True
    project = make_project(tmp_path / "p", params)
    write_images(project / "images", 0, 64)
    stages = yaml.safe_load(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))["stages"]
    assert stages[dvc_stages.CHECK_STAGE]["deps"] == [*dvc_stages.CHECK_DEPS, "images"]
    for shard in SHARDS:
        match = stages[f"match--{ANCHOR}--real--{DISC}--{shard}"]
        assert f"results/datasets/real/{shard}.tsv" in match["deps"]
        assert "datasets.real" in match["params"]
        assert "--dataset 'real=" in match["cmd"] and f"{shard}.tsv" in match["cmd"]
