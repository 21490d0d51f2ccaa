"""`dvc_stages.stage_globs`: the stages a colleague pulls, as few `dvc pull --glob` patterns
that match exactly those stages."""

from fnmatch import fnmatchcase

from workflow_project import dvc_stages

EVERY = ["train--shapes-gan", "train--shapes-cnn-sup", "train--faces-x",
         "match--g--all--a--000-128", "match--g--all--a--128-256", "match--g--all--b--000-128",
         "match--h--all--a--000-128", "reduce--g--all--a", "reduce--g--all--b",
         "rosetta--shapes"]


def test_patterns_match_exactly_the_stages_asked_for():
    wanted = ["train--shapes-gan", "train--shapes-cnn-sup", "match--g--all--a--000-128",
              "match--g--all--a--128-256", "match--g--all--b--000-128", "reduce--g--all--a",
              "reduce--g--all--b"]
    globs = dvc_stages.stage_globs(wanted, EVERY)
    assert sorted(globs) == ["match--g--*", "reduce--*", "train--shapes-cnn-sup",
                             "train--shapes-gan"]
    matched = {n for n in EVERY if any(fnmatchcase(n, g) for g in globs)}
    assert matched == set(wanted)
    assert dvc_stages.stage_globs(["rosetta--shapes"], EVERY) == ["rosetta--*"]
    assert dvc_stages.stage_globs([], EVERY) == []
