"""The own-models guide (docs/guides/own-models.md) followed as a new user would, on a folder of
images written here: its marked blocks (`<!-- tested: LABEL -->` before a fence) are read from
the Markdown and run as they stand, so the guide and this test cannot drift apart.

The test's only changes to the guide: every data set's `folder` becomes the folder written
here, and every dictionary's `images` becomes 64 (the guide's 512 and 1024 would take minutes
of the shared CPU, and the folder holds 64 images). The guide's YAML entries are added under
the blocks of the same name in the shipped params.yaml, which is where the guide says to put
them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from workflow_project import ROOT, env, job_counts, make_project, planned_jobs, write_params

from rosetta_steps.core import world

GUIDE = ROOT / "docs" / "guides" / "own-models.md"
BLOCK = re.compile(r"^<!-- tested: ([\w-]+) -->\n```(\w+)\n(.*?)^```", re.S | re.M)
IMAGES = 64  # every dictionary's images in the test (one shard of the shipped shard_size)
ANCHOR, DISC, DATASET = "my-cnn-run1", "my-cnn-run2", "my-photos"


def guide_blocks() -> dict[str, tuple[str, str]]:
    """{label: (language, code)} of the guide's tested blocks."""
    found = {label: (lang, code) for label, lang, code in BLOCK.findall(GUIDE.read_text())}
    assert len(found) == len(BLOCK.findall(GUIDE.read_text())), "a label is used twice"
    return found


def run(project: Path, label: str, replace: tuple[str, str] | None = None) -> str:
    """Run the guide's block `label` in the project (bash, or Python as `python -c`) and
    return its output; `replace` swaps one string of the code first."""
    lang, code = guide_blocks()[label]
    if replace:
        assert replace[0] in code
        code = code.replace(*replace)
    command = {"bash": ["bash", "-euo", "pipefail", "-c", code],
               "python": ["python", "-c", code]}[lang]
    proc = subprocess.run(command, cwd=project, env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def guide_params(label: str, folder: Path) -> dict:
    """The guide's YAML block `label` with the test's two substitutions (folder, images)."""
    lang, code = guide_blocks()[label]
    assert lang == "yaml"
    params = yaml.safe_load(code)
    for dataset in params.get("datasets", {}).values():
        dataset["folder"] = str(folder)
    for dictionary in params.get("dictionaries", {}).values():
        dictionary["images"] = IMAGES
    return params


def add_to(params: dict, additions: dict) -> dict:
    """`params` with each block's entries added under the block of the same name, as the
    guide says (the blocks exist already; the shipped entries stay)."""
    out = {key: dict(value) if isinstance(value, dict) else value
           for key, value in params.items()}
    for key, entries in additions.items():
        assert key in params and not set(entries) & set(params[key]), key
        out[key].update(entries)
    return out


def write_photos(folder: Path, n: int) -> None:
    """n images of the shapes world as PNGs, none of them square (the data set crops)."""
    folder.mkdir(parents=True)
    for i, pixels in enumerate(world.render(n, 3).images):
        size = (96, 80) if i % 2 else (72, 100)
        Image.fromarray(pixels).resize(size).save(folder / f"photo_{i:03d}.png")


def start(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A project with the shipped params.yaml, a folder of photos beside it, and the guide's
    step 1 done (the example file copied, stand-in checkpoints saved)."""
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    project = make_project(tmp_path / "project", shipped)
    shutil.copytree(ROOT / "docs" / "examples", project / "docs" / "examples")
    photos = tmp_path / "my-photos"
    write_photos(photos, IMAGES)
    run(project, "setup")
    run(project, "checkpoints")
    return project, photos, shipped


def targets(label: str) -> list[str]:
    """The targets of the guide's snakemake commands in block `label` (dry runs left out)."""
    lines = guide_blocks()[label][1].splitlines()
    return [line.split()[-1] for line in lines
            if line.startswith("snakemake") and " -n " not in line]


@pytest.mark.slow
def test_the_guide_runs_as_written_to_the_dictionary_page(tmp_path):
    project, photos, shipped = start(tmp_path)
    additions = guide_params("params", photos)
    assert set(additions) == {"datasets", "models", "dictionaries"}
    write_params(project, add_to(shipped, additions))

    printed = run(project, "units").splitlines()
    assert printed == ["features.1 16 units of 64x64", "features.3 32 units of 32x32",
                       "features.5 64 units of 16x16"]
    assert f"It prints `{printed[0]}` and two more lines" in GUIDE.read_text()

    run(project, "build")
    built = targets("build")
    page = "results/dictionary/my_photos.html"
    pairwise = f"results/pairwise/{ANCHOR}/{DATASET}/{DISC}.html"
    assert built == [page, pairwise]
    assert ANCHOR in (project / page).read_text() and DISC in (project / pairwise).read_text()
    buddies = pd.read_csv(project / f"results/bestbuddies/{ANCHOR}/{DATASET}/{DISC}.csv")
    assert len(buddies) and set(buddies.gan) == {ANCHOR} and set(buddies.disc) == {DISC}
    assert set(buddies.gan_layer) <= {"features.1", "features.3", "features.5"}
    assert buddies.q.notna().all()  # the shipped null model's 2 permutations
    concepts = pd.read_csv(project / "results/rosetta/my_photos.csv")
    assert set(concepts.model) == {ANCHOR, DISC}
    assert (project / f"results/match/{ANCHOR}/{DATASET}/{DISC}/matches.zarr").is_dir()
    listing = (project / f"results/datasets/{DATASET}/000000-0000{IMAGES}.tsv").read_text()
    assert listing.splitlines()[0].startswith("photo_000.png\t")
    assert len(listing.splitlines()) == IMAGES
    assert job_counts(project, *built) == {}  # a second run does nothing

    # The guide's other way: the shipped params.yaml untouched, the entries in a file of their
    # own given with --configfile=FILE, plans the same results: nothing to do.
    assert "--configfile=my-models.yaml results/dictionary/my_photos.html" in GUIDE.read_text()
    write_params(project, shipped)
    (project / "my-models.yaml").write_text(yaml.safe_dump(additions, sort_keys=False))
    assert job_counts(project, "--configfile=my-models.yaml", *built) == {}


def test_the_guides_timm_and_generator_entries_plan_and_its_generator_builds(tmp_path):
    project, photos, shipped = start(tmp_path)
    run(project, "generator-setup")
    run(project, "generator-checkpoint")
    params = shipped
    for label in ("params", "packaged", "generator"):
        params = add_to(params, guide_params(label, photos))
    write_params(project, params)

    printed = run(project, "units", replace=(f'name = "{ANCHOR}"', 'name = "my-gan"'))
    assert printed.splitlines() == ["main.2 512 units of 4x4", "main.5 256 units of 8x8",
                                    "main.8 128 units of 16x16", "main.11 64 units of 32x32"]

    dinov2 = "timm:vit_base_patch14_reg4_dinov2.lvd142m"
    jobs = planned_jobs(project, "results/dictionary/my_photos_dinov2.html",
                        "results/dictionary/my_gan.html")
    outputs = {o for job in jobs for o in job["output"]}
    assert {f"results/match/{dinov2}/my-photos-518/{d}/matches.zarr"
            for d in (ANCHOR, "timm:convnext_tiny.fb_in1k", "resnet50")
            } <= outputs
    assert f"results/datasets/my-photos-518/000000-0000{IMAGES}.tsv" in {
        i for job in jobs for i in job["input"]}
    assert {f"results/match/my-gan/all/{d}/matches.zarr" for d in (ANCHOR, DISC)} <= outputs
    shard = f"results/match/my-gan/all/{ANCHOR}/shards/000000-0000{IMAGES}.zarr"
    mining = next(job for job in jobs if shard in job["output"])
    assert {"models/my_generator.py", "checkpoints/my_gan.pt", "models/my_encoder.py",
            "checkpoints/run1.pt"} <= mining["input"]
