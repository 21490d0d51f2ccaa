"""`snakemake --report report.zip` after a run: one file that holds the pages, the discovery
metric, the sheets and the captions of workflow/report/*.rst, browsable by category."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from workflow_project import ROOT, snakemake

CAPTIONS = sorted((ROOT / "workflow" / "report").glob("*.rst"))
RESULTS = ["results/dictionary/shapes.html", "results/pairwise/shapes-gan/all/shapes-cnn-sup.html",
           "results/metrics/discovery/shapes.json", "results/inversion/shapes/table1.png",
           "results/inversion/shapes/neurons.png", "results/edits/shapes/shift.png"]
CATEGORIES = ["Dictionaries", "Pairwise best buddies", "Inversion", "Edits"]


def plain_text(caption: Path) -> str:
    """The longest run of a caption's lines that neither its templating nor reStructuredText
    changes when the report renders it."""
    runs = [m.group(0).strip() for line in caption.read_text().splitlines() if "{" not in line
            for m in re.finditer(r"[A-Za-z0-9 ,.;:()-]+", line)]
    return max(runs, key=len)


def test_the_report_holds_the_results_and_their_captions(built, tmp_path):
    report = tmp_path / "report.zip"
    snakemake(built, "--report", str(report))
    with zipfile.ZipFile(report) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    page = entries["report/report.html"].decode()
    for result in RESULTS:
        name = Path(result).name
        copies = [data for entry, data in entries.items() if entry.endswith(f"/{name}")]
        assert copies == [(built / result).read_bytes()], result
    assert len(CAPTIONS) >= 8
    for caption in CAPTIONS:
        text = plain_text(caption)
        assert len(text) >= 40 and text in page, caption.name
    assert all(f'"{category}"' in page for category in CATEGORIES)
