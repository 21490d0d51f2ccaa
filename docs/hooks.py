"""MkDocs hook: brings CHANGELOG.md and bench/RESULTS.md, which live where a reader of the
repository looks for them, into the site as changelog.md and measurements.md, and points the
docs' relative links to them (written as they work on a code host) at those pages."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = {"CHANGELOG.md": "changelog.md", "bench/RESULTS.md": "measurements.md"}
LINK = re.compile(r"\]\(([^)#\s]+\.md)(#[^)\s]*)?\)")


def on_files(files: Files, config) -> Files:
    for source, uri in OUTSIDE.items():
        files.append(File.generated(config, uri, abs_src_path=str(ROOT / source)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Links from a docs page to CHANGELOG.md or bench/RESULTS.md become links to their pages
    in the site; links inside those two files to docs pages become site links too."""
    source = Path(page.file.abs_src_path).resolve()
    here = Path(config["docs_dir"]) / page.file.src_uri
    docs = Path(config["docs_dir"]).resolve()

    def rewrite(m: re.Match) -> str:
        target = (source.parent / m.group(1)).resolve()
        rel = target.relative_to(ROOT).as_posix() if target.is_relative_to(ROOT) else None
        if rel in OUTSIDE:
            uri = docs / OUTSIDE[rel]
        elif target.is_relative_to(docs):
            uri = target
        else:
            return m.group(0)
        link = os.path.relpath(uri, here.parent.resolve()).replace(os.sep, "/")
        return f"]({link}{m.group(2) or ''})"

    return LINK.sub(rewrite, markdown)
