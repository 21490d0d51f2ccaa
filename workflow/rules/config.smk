# params.yaml, read and checked before any job is planned: a YAML syntax error names its line
# and column; then (check_config, called once common.smk is included) the schema in
# workflow/schemas/params.schema.yaml, the dictionaries against each other, and every model
# name against the package's registry, one line per problem.

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

PARAMS = "params.yaml"
# What to write where the schema allows one of two forms (jsonschema's own message lists both)
ONE_OF = {
    "dictionaries": (
        "give either gan: (a generator) or dataset: and anchor: (a data set and its model)"
    ),
    "datasets": (
        "declare {world: shapes} or {folder: PATH, glob: PATTERN, size: PIXELS} "
        "(glob and size optional)"
    ),
}


def check_yaml(path: str) -> None:
    """Stop with one line naming the line and column of a YAML syntax error in `path`."""
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        sys.exit(
            f"{path}: {where}{getattr(err, 'problem', None) or err} (not valid YAML)"
        )
    except OSError as err:
        sys.exit(f"{path}: cannot read it ({err.strerror})")


check_yaml(PARAMS)


configfile: PARAMS


def check_config(config: dict) -> None:
    """Stop with one line per problem unless the config fits the schema and itself."""
    schema = yaml.safe_load(
        Path(workflow.source_path("../schemas/params.schema.yaml")).read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"params.yaml: {'.'.join(map(str, e.absolute_path)) or 'top level'}: "
        + (
            ONE_OF[e.absolute_path[0]]
            if e.validator == "oneOf"
            and len(e.absolute_path) == 2
            and e.absolute_path[0] in ONE_OF
            else e.message
        )
        for e in validator.iter_errors(config)
    ]
    if errors:  # the checks below read the config the schema describes
        sys.exit("\n".join(errors))
    images, controls = {}, {}
    config.setdefault("datasets", {})
    for name, d in config.get("dictionaries", {}).items():
        key = (anchor_of(d), subset_of(d))
        if controls.setdefault(key, (controls_of(name), name))[0] != controls_of(name):
            errors.append(
                f"params.yaml: dictionaries {controls[key][1]} and {name} mine "
                f"{key[0]}/{key[1]} with different controls; they share its results, so "
                "give them the same controls"
            )
        if images.setdefault(key, (d["images"], name))[0] != d["images"]:
            other = images[key][1]
            errors.append(
                f"params.yaml: dictionaries {other} and {name} mine {key[0]}/{key[1]} "
                "with different image counts; they share its results, so give them "
                "the same images"
            )
        if anchor_of(d) in d["discs"]:
            errors.append(
                f"params.yaml: dictionaries.{name}: {anchor_of(d)} is its "
                f"{'generator' if 'gan' in d else 'anchor'} and also one of its discs"
            )
        errors += check_dataset(config, name, d)
    for block in ("inversion", "edits"):
        name = config[block]["dictionary"]
        if name not in config["dictionaries"]:
            errors.append(f"params.yaml: {block}.dictionary: no dictionary {name!r}")
        elif "gan" not in config["dictionaries"][name]:
            errors.append(
                f"params.yaml: {block}.dictionary: {name} is anchored on a data set; "
                "inversion and edits need a generator, so name a dictionary with gan:"
            )
    ood = config["inversion"]["ood"]
    if not sorted(Path(ood).glob("*.png")):
        errors.append(
            f"params.yaml: inversion.ood: no *.png targets in {ood!r}; draw them with "
            "workflow/scripts/make_ood_targets.py or name a folder of images"
        )
    errors += check_null(config)
    errors += check_models(config)
    errors += check_shipped_zoo(config)
    if errors:
        sys.exit("\n".join(errors))


def check_shipped_zoo(config: dict) -> list:
    """With zoo.source shipped, one line for each zoo model that data/zoo/shapes/ lacks or
    that params.yaml gives other settings than it was trained with: its results would be
    filed under settings it never had."""
    zoo = config["zoo"]
    if zoo["source"] != "shipped":
        return []
    manifest = Path(SHIPPED_MANIFEST)
    try:
        shipped = json.loads(manifest.read_text())["models"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [
            f"params.yaml: zoo.source: shipped, but {manifest} cannot be read ({err}); "
            f"restore it with `git checkout -- {manifest}`, or set zoo.source: trained"
        ]
    errors = []
    for model, ours in zoo["models"].items():
        if model not in shipped:
            errors.append(
                f"params.yaml: zoo.models.{model} is not in the shipped zoo ({manifest}); "
                "set zoo.source: trained to train it here"
            )
            continue
        theirs = shipped[model]["settings"]
        wanted = {**ours, "seed": zoo["seed"]}
        changed = [
            f"{k} {v} (shipped: {theirs.get(k)})"
            for k, v in wanted.items()
            if theirs.get(k) != v
        ]
        if changed:
            errors.append(
                f"params.yaml: zoo.models.{model}: {', '.join(changed)} differ from the "
                "shipped zoo's; set zoo.source: trained to train with them"
            )
    return errors


NOTED = set()  # data sets whose skipped links were printed while planning


def check_dataset(config: dict, name: str, d: dict) -> list:
    """One line unless a dictionary on a data set names a declared one that holds its images
    (a folder that exists, files its glob matches, as many as `images`)."""
    if "dataset" not in d:
        return []
    if d["dataset"] not in config["datasets"]:
        return [
            f"params.yaml: dictionaries.{name}.dataset: no data set {d['dataset']!r} under "
            f"datasets: (declared: {', '.join(config['datasets']) or 'none'})"
        ]
    if "folder" not in config["datasets"][d["dataset"]]:
        return []
    from rosetta_steps.core.cli import UserError

    try:
        folder_dataset(d["dataset"]).check_count(d["images"])
    except UserError as err:
        return [f"params.yaml: datasets.{d['dataset']}: {err}"]
    note = folder_dataset(d["dataset"]).skipped_note()
    if note and d["dataset"] not in NOTED:
        NOTED.add(d["dataset"])
        print(f"note: params.yaml: datasets.{d['dataset']}: {note}", file=sys.stderr)
    return []


def check_null(config: dict) -> list:
    """The null model pairs images within a batch, so no batch may hold a single image; and a
    false discovery rate level needs the null."""
    nulls = config["null"]["permutations"]
    if config["bb_fdr"] is not None and not nulls:
        return [
            "params.yaml: bb_fdr: a false discovery rate needs the null model; set "
            "null.permutations to 1 or more, or bb_fdr to null"
        ]
    if not nulls:
        return []
    for gan, subset in {
        (anchor_of(d), subset_of(d)) for d in config["dictionaries"].values()
    }:
        batch = model_option(gan, "batch_size") or config["batch_size"]
        for shard in shards(gan, subset):
            count = shard_range(shard)[1]
            if batch < 2 or count % batch == 1:
                return [
                    f"params.yaml: the null model pairs images within a batch, but shard "
                    f"{shard} of {gan}/{subset} in batches of {batch} leaves a batch of 1 "
                    "image: change batch_size (or models.<G>.batch_size), shard_size or images"
                ]
    return []


def check_models(config: dict) -> list:
    """One line for each model params.yaml names that the registry lacks or that has the wrong
    kind for its place, so that a typo stops the run before the zoo trains."""
    known = registered_models()
    listing = ", ".join([*known, "timm:ARCH", "open_clip:ARCH/TAG"])
    places = [(f"zoo.models.{m}", m, None) for m in config["zoo"]["models"]]
    places += [(f"models.{m}", m, None) for m in config["models"]]
    for name, d in config["dictionaries"].items():
        places.append(
            (f"dictionaries.{name}.gan", d["gan"], "generator")
            if "gan" in d
            else (f"dictionaries.{name}.anchor", d["anchor"], "discriminative")
        )
        places += [
            (f"dictionaries.{name}.discs", m, "discriminative") for m in d["discs"]
        ]
    declared = {m: user_model(m) for m in config["models"] if user_model(m)}
    errors = [
        f"params.yaml: models.{m}.file: {d['file']} not found"
        for m, d in declared.items()
        if not Path(d["file"]).expanduser().is_file()
    ]
    errors += [  # before any job: a job would first remove the packaged model's stores
        f"params.yaml: models.{m}: {m} is a packaged model's name; give your own model "
        "a name of its own"
        for m in declared
        if m in known or m.startswith(("timm:", "open_clip:"))
    ]
    for key, model, kind in places:
        found = (
            "discriminative"
            if model.startswith(("timm:", "open_clip:"))
            else (declared.get(model) or {}).get("kind") or known.get(model, (None,))[0]
        )
        if found is None:
            errors.append(
                f"params.yaml: {key}: unknown model {model!r}; known models: {listing}"
            )
        elif kind and found != kind:
            errors.append(
                f"params.yaml: {key}: {model} is a {found} model; name a {kind} one"
            )
    return errors


def registered_models() -> dict:
    """{name: [kind, module that defines it]} of the package's model registry (`python -m
    rosetta_steps.models names`).
    Asking costs a torch import, so the answer is cached under the hash of the zoo's code.
    """
    code = sorted((PACKAGE / "models").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in code))
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / PACKAGE.name
        / f"models-{digest.hexdigest()[:16]}.json"
    )
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    proc = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE.name}.models", "names"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"cannot list the registered models: {proc.stderr.strip()[-2000:]}")
    known = {name: rest for name, *rest in map(str.split, proc.stdout.splitlines())}
    try:  # a cache that cannot be written is only slower
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known))
        tmp.replace(cache)
    except OSError:
        pass
    return known
