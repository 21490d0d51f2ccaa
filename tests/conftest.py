"""How `make test` spreads tests over its pytest-xdist workers: a file's tests go to one
worker (they share its module fixtures), and every test that uses the session's built tiny
project (`built`, tests/workflow/conftest.py) goes to one worker whatever its file, so the
project is built once per run, not once per worker (`--dist loadgroup`)."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        shared = "built" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group("built" if shared else item.nodeid.split("::")[0]))
