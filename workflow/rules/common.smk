# Helpers shared by the rules: one path template per output kind, shard lists, the fused
# match jobs, and the command fragments every rule repeats. Models and the code a step runs
# are in models.smk.
# The params.yaml keys each rule's jobs depend on (for dvc.yaml) stand beside the rule, as a
# `# dvc params:` line that workflow/scripts/dvc_stages.py reads.

import json
import os
import re
import shlex
import sys
from functools import cache
from pathlib import Path

from rosetta_steps.core.options import named_json

ALL = "all"  # the subset of an unconditional generator
PACKAGE = Path("rosetta_steps")
# Page templates are package data, not imports, so code() cannot see them.
TEMPLATES = sorted(str(p) for p in (PACKAGE / "pages" / "templates").iterdir())
# Registered on first need (rosetta_steps.models.register_provider): not an import of the steps.
ENV = "../envs/rosetta.yaml"  # relative to the rule files; used with `--sdm conda`

# Output paths, one template per kind. Per-pair results are named by generator, subset and D
# only, so every dictionary that uses a pair shares them.
# The shapes zoo the jobs mine: the shipped files, checked against their manifest (zoo.source:
# shipped), or the workflow's own training (zoo.source: trained). `make zoo` trains and ships.
SHIPPED_WEIGHTS = "data/zoo/shapes/{model}.safetensors"
SHIPPED_MANIFEST = "data/zoo/shapes/manifest.json"
ZOO_WEIGHTS = "results/zoo/shapes/{model}.safetensors"
ZOO_METRICS = "results/zoo/shapes/{model}.json"
TRAINED_WEIGHTS = "results/zoo/trained/{model}.safetensors"
TRAINED_METRICS = "results/zoo/trained/{model}.json"
TRAINED_MANIFEST = "results/zoo/trained/manifest.json"
ZOO_SHEET = "results/zoo/shapes/samples.png"
# A dictionary anchored on a data set puts its anchor model in {gan} and the data set's name in
# {subset}: the anchor is discriminative, so its paths never meet a generator's.
SAMPLES = "results/samples/{gan}/{subset}/{shard}.zarr"
LISTING = "results/datasets/{dataset}/{shard}.tsv"  # a folder's files in a shard (listing_files)
SHARD = "results/match/{gan}/{subset}/{disc}/shards/{shard}.zarr"
MATCHES = "results/match/{gan}/{subset}/{disc}/matches.zarr"
# r = 1 .. permutations
NULL_MATCHES = "results/match/{gan}/{subset}/{disc}/null-{r}.zarr"
BESTBUDDIES = "results/bestbuddies/{gan}/{subset}/{disc}.csv"
NULL_BESTBUDDIES = "results/bestbuddies-null/{gan}/{subset}/{disc}.csv"
STABILITY = "results/stability/{gan}/{subset}/{disc}.json"
DISSECTION = "results/dissection/{model}.csv"
FACE_DISSECTION = "results/dissection/faces/{gan}/{model}.csv"
# a wildcard that is one name (params.yaml's names), no folder
NAME = r"[A-Za-z0-9_.:-]+"
# whose landmarks make the face part masks (rosetta_steps.mining.dissection.LANDMARKS)
LANDMARKS = "mtcnn-onet"
PARTS_SHEET = "results/dissection/{name}-parts.png"
CONCEPTS = "results/rosetta/{name}.csv"
# the controls (docs/guides/controls.md): an untrained twin's weights for the images of a
# (gan, subset), each (G, D) pair's controls table and unit table, and the Rosetta merge of
# a dictionary's twins of seed s in place of its Ds (its decoy concepts)
TWIN_WEIGHTS = "results/twins/{gan}/{subset}/{twin}.safetensors"
# the images (the dictionary's first ones) a twin's BatchNorm statistics are re-estimated on
TWIN_IMAGES = 256
CONTROLS = "results/controls/{gan}/{subset}/{disc}.csv"
CONTROL_UNITS = "results/controls/{gan}/{subset}/{disc}-units.csv"
DECOYS = "results/rosetta/decoys/{name}/twin{seed}.csv"
DISCOVERY = "results/metrics/discovery/{name}.json"
INVENTORY = "results/metrics/inventory/{name}.json"
DISCOVERY_PLOT = "results/plots/discovery/{name}.json"
DICTIONARY = "results/dictionary/{name}.html"
PAIRWISE = "results/pairwise/{gan}/{subset}/{disc}.html"
INVERSION_METRICS = "results/metrics/inversion.json"
INVERSION_SHEET = "results/inversion/{name}/{sheet}.png"
EDIT_SHEET = "results/edits/{name}/{edit}.png"
EDIT_METRICS = "results/metrics/edits/{name}/{edit}.json"

# What every rule's command repeats: the step, its log (whose last line, the step's one-line
# error, reaches the terminal when it fails), and the device and threads of steps that run
# models, with their params and resources.
DEVICE_ARGS = " --device {params.device} --threads {params.threads}"
GPU = 0 if config["device"] == "cpu" else 1

# Set by workflow/scripts/dvc_stages.py while it writes dvc.yaml: a setting that only reaches
# a command is then written as DVC's `${key}`, so `dvc repro` runs the value params.yaml holds
# when it runs, not the one dvc.yaml was written with.
DVC_TEMPLATES = os.environ.get("ROSETTA_DVC_TEMPLATES") == "1"


def _value(keys: tuple):
    """params.yaml's value at `keys`, or its `${a.b}` while writing dvc.yaml (a key with a
    character DVC's templating cannot address keeps its value)."""
    value = config
    for key in keys:
        value = value[key]
    if DVC_TEMPLATES and not any(c in key for key in keys for c in ".[]${}"):
        return "${" + ".".join(keys) + "}"
    return value


def setting(*keys: str):
    """A rule's params entry for params.yaml's value at `keys` (a function, so that Snakemake
    does not read the braces of `${...}` as wildcards)."""
    value = _value(keys)
    return lambda wildcards: value


def settings(*keys: str) -> dict:
    """The values of every key of the params.yaml block at `keys`, as `setting` gives them
    (for use inside a params function)."""
    block = config
    for key in keys:
        block = block[key]
    return {key: _value((*keys, key)) for key in block}


DEVICE_PARAMS = {"device": setting("device"), "threads": setting("threads")}
# reduce and stability run no model: they merge states on a GPU where their node has one
# (auto; the Slurm profile sends them to CPU nodes), and on the CPU when params.yaml says cpu.
MERGE_DEVICE = "cpu" if config["device"] == "cpu" else "auto"


def option(flag: str, paths) -> str:
    """`FLAG PATH ...` with every path shell-quoted, or nothing when there is no path (an
    optional input or output of a rule)."""
    return " ".join([flag, *map(shlex.quote, map(str, paths))]) if paths else ""


def step(module: str, args: str) -> str:
    """The shell command of a rule: `python -m rosetta_steps.<module> ARGS`, logged; after a
    minute the step says on the console (descriptor 3) where its log is (core.cli)."""
    return (
        f"ROSETTA_LOG={{log:q}} python -m rosetta_steps.{module} {args}"
        " 3>&2 > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"
    )


def log(rule: str, *wildcards: str) -> str:
    """logs/<rule>--<wildcard>--...log"""
    return "--".join([f"logs/{rule}", *(f"{{{w}}}" for w in wildcards)]) + ".log"


def anchor_of(d: dict) -> str:
    """The model a dictionary matches every other one to: its generator, or the anchor of a
    dictionary on a data set (in G's role and G's paths)."""
    return d.get("gan") or d["anchor"]


def subset_of(d: dict) -> str:
    """`all`, a generator's class, or the data set a dictionary is anchored on."""
    return d.get("dataset") or d.get("class", ALL)


def dataset_of(gan: str, subset: str) -> dict | None:
    """The declaration (params.yaml's datasets.NAME) of the data set that `gan` anchors as
    `subset`, or None when `gan` is a generator."""
    for d in config["dictionaries"].values():
        if d.get("anchor") == gan and d.get("dataset") == subset:
            return config["datasets"][subset]
    return None


def source_args(gan: str, subset: str) -> str:
    """`--subset SUBSET` of a generator, or `--dataset NAME=JSON` of a data set."""
    declaration = dataset_of(gan, subset)
    if declaration is None:
        return f"--subset {shlex.quote(subset)}"
    return f"--dataset {shlex.quote(named_json(subset, declaration))}"


@cache
def folder_dataset(name: str):
    """params.yaml's folder data set `name` (core.datasets; its files are listed once)."""
    from rosetta_steps.core.datasets import dataset

    return dataset(config["datasets"][name], config["seed"])


def dataset_notes(name: str) -> str:
    """`--note` with the links that dictionary `name`'s data set folder skipped, for its page
    (empty without any): a params value, so a link made or mended reruns the page alone.
    """
    d = dictionary(name)
    if "folder" not in config["datasets"].get(d.get("dataset"), {}):
        return ""
    note = folder_dataset(d["dataset"]).skipped_note()
    return f"--note {shlex.quote(note)}" if note else ""


def listing_files(gan: str, subset: str, shard: str) -> list:
    """The file list of a folder data set's shard, as an input of the jobs that read it:
    written while the run is planned, and only when it changed, so that adding, removing or
    changing a file reruns exactly the shards whose images it changes."""
    declaration = dataset_of(gan, subset)
    return [_listing(subset, shard)] if declaration and "folder" in declaration else []


@cache
def _listing(subset: str, shard: str) -> str:
    """`listing_files`' file, made once per run (a shard's sample and match jobs share it)."""
    start, count = shard_range(shard)
    path = Path(LISTING.format(dataset=subset, shard=shard))
    text = folder_dataset(subset).listing(start, start + count)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            tmp.write_text(text)
            tmp.replace(path)
        except OSError as err:  # a full disk, say: one line, and no temporary left
            tmp.unlink(missing_ok=True)
            sys.exit(
                f"cannot write the file list {path}: {err.strerror}; nothing was written"
            )
    return str(path)


def dictionary(name: str) -> dict:
    if name not in config["dictionaries"]:
        sys.exit(
            f"params.yaml has no dictionary {name!r}; it has: "
            f"{', '.join(config['dictionaries'])}"
        )
    return config["dictionaries"][name]


def default_dictionaries() -> list:
    return [n for n, d in config["dictionaries"].items() if d.get("default", False)]


def shared_dictionaries() -> list:
    """The dictionaries whose stages dvc.yaml holds: default or marked `share: true`."""
    return [
        n
        for n, d in config["dictionaries"].items()
        if d.get("default", False) or d.get("share", False)
    ]


def dictionary_outputs(names: list) -> list:
    """What building dictionaries `names` means: each one's page, its pairwise pages, the
    inventory of its mining and, with the null model on, its discovery metric and plot file.
    """
    out = []
    for name in names:
        out += [DICTIONARY.format(name=name), *per_pair(PAIRWISE, pairs(name)[:-1])]
        out.append(INVENTORY.format(name=name))
        if dictionary(name).get("labels") == "faces":
            out.append(PARTS_SHEET.format(name=name))
        if NULLS:
            out += [DISCOVERY.format(name=name), DISCOVERY_PLOT.format(name=name)]
    return out


def images_of(gan: str, subset: str) -> int:
    """Images mined for a (generator, subset); check_config made them agree."""
    for d in config["dictionaries"].values():
        if anchor_of(d) == gan and subset_of(d) == subset:
            return d["images"]
    raise ValueError(f"no dictionary mines {gan}/{subset}")


def shards(gan: str, subset: str) -> list:
    """Shard names start-stop: fixed-size blocks of image indices, the last one cut short."""
    n, size = images_of(gan, subset), config["shard_size"]
    return [f"{lo:06d}-{min(lo + size, n):06d}" for lo in range(0, n, size)]


def shard_range(shard: str) -> tuple:
    start, stop = (int(x) for x in shard.split("-"))
    return start, stop - start


def pairs(name: str) -> list:
    """(gan, subset, disc) for every D of a dictionary, then G against itself."""
    d = dictionary(name)
    return [(anchor_of(d), subset_of(d), disc) for disc in [*d["discs"], anchor_of(d)]]


def mined_pairs(name: str) -> list:
    """(gan, subset, model) of every match store a dictionary reads: its Ds, their untrained
    twins and the pixel control when its controls are on, then G itself."""
    gan, subset, _ = pairs(name)[-1]
    discs = [d for _, _, d in pairs(name)[:-1]]
    controls = [t for d in discs for t in twins_of(gan, subset, d)]
    pixels = pixel_model(gan, subset)
    return [
        (gan, subset, m)
        for m in [*discs, *controls, *([pixels] if pixels else []), gan]
    ]


def partners(gan: str, subset: str) -> list:
    """Every D that a dictionary pairs with (gan, subset), with its untrained twins and the
    pixel control when the controls are on, then the generator itself."""
    discs = {
        disc
        for d in config["dictionaries"].values()
        if anchor_of(d) == gan and subset_of(d) == subset
        for disc in d["discs"]
    }
    controls = {m for disc in discs for m in twins_of(gan, subset, disc)}
    pixels = pixel_model(gan, subset)
    return [*sorted(discs | controls | ({pixels} if pixels else set())), gan]


def controls_of(name: str) -> dict:
    """A dictionary's controls: params.yaml's `controls`, key by key under its own."""
    return {**config["controls"], **(dictionary(name).get("controls") or {})}


def pair_controls(gan: str, subset: str) -> dict:
    """The controls of the dictionaries on (gan, subset) (check_config made them agree)."""
    for name, d in config["dictionaries"].items():
        if anchor_of(d) == gan and subset_of(d) == subset:
            return controls_of(name)
    return {"twins": 0, "pixels": False}


def twin_count(gan: str, subset: str) -> int:
    """The images a twin's BatchNorm statistics are taken over: the first TWIN_IMAGES."""
    return min(TWIN_IMAGES, images_of(gan, subset))


def controls_outputs(name: str, template: str) -> list:
    """`template` (CONTROLS, CONTROL_UNITS) of each of a dictionary's pairs, when its
    controls are on (twins or pixels); else none."""
    on = controls_of(name)["twins"] or controls_of(name)["pixels"]
    return per_pair(template, pairs(name)[:-1]) if on else []


def twin_bestbuddies(name: str) -> list:
    """The best-buddy tables of every untrained twin of a dictionary's Ds."""
    return [
        BESTBUDDIES.format(gan=g, subset=s, disc=t)
        for g, s, d in pairs(name)[:-1]
        for t in twins_of(g, s, d)
    ]


# A dictionary's controls as inputs of its discovery and dictionary jobs, named as the
# steps' options, and `control_options` makes those options of them.
CONTROL_INPUTS = {
    "controls": lambda w: controls_outputs(w.name, CONTROLS),
    "control_units": lambda w: controls_outputs(w.name, CONTROL_UNITS),
    "twin_bestbuddies": lambda w: twin_bestbuddies(w.name),
}


def control_options(wildcards, input) -> str:
    """`--controls ... --control-units ... --twin-bestbuddies ...` of a job's CONTROL_INPUTS."""
    return " ".join(
        option(f"--{key.replace('_', '-')}", getattr(input, key))
        for key in CONTROL_INPUTS
    )


def self_nulls(name: str) -> list:
    """G's null self stores, with which the rosetta step cuts G's self best buddies when
    bb_fdr is set (none without it)."""
    return [] if config["bb_fdr"] is None else null_matches(*pairs(name)[-1])


# The rosetta step's settings and arguments, one for the dictionaries' concepts and for the
# twins' decoy concepts: both are merged by the same rule.
ROSETTA_PARAMS = {
    "k": setting("k"),
    "rule": setting("bb_rule"),
    "fdr": "" if config["bb_fdr"] is None else f"--fdr {config['bb_fdr']}",
    "self_nulls": lambda w, input: option("--self-null", input.self_nulls),
}
ROSETTA_ARGS = (
    "--bestbuddies {input.bestbuddies:q} --self-matches {input.self_matches:q}"
    " --k {params.k} --rule {params.rule} {params.fdr} {params.self_nulls}"
    " --out {output:q}"
)


def twins_of(gan: str, subset: str, disc: str) -> list:
    """The untrained twins of `disc` mined on (gan, subset): twin1:DISC .. twinS:DISC."""
    count = pair_controls(gan, subset)["twins"]
    return [f"twin{s}:{disc}" for s in range(1, count + 1)]


def pixel_model(gan: str, subset: str) -> str | None:
    """The pixel control mined on (gan, subset): `pixels` for true, the one named, or None."""
    pixels = pair_controls(gan, subset)["pixels"]
    return "pixels" if pixels is True else pixels or None


# In a store's attr mined_with: the job also wrote the samples. The value is +samples, its
# plus spelt out: `snakemake --lint` reads a quote and a plus as a path joined with a plus.
SAMPLES_TOKEN = "\N{PLUS SIGN}samples"


def mined_with(path: str) -> tuple:
    """What the match job that wrote the store at `path` wrote together (its attr
    mined_with: partners, and SAMPLES_TOKEN), or () for a store without the record."""
    try:
        attrs = json.loads(Path(path, "zarr.json").read_text())["attributes"]
        return tuple(str(attrs.get("mined_with", "")).split())
    except (OSError, ValueError, KeyError, TypeError):
        return ()


def fused_groups() -> dict:
    """Rule name -> (gan, subset, partners, with samples, shards) of the fused match jobs:
    one per shard writes several of its pairs' shard stores (and its sample store) from one
    pass of G. A shard's outputs that exist keep the rule that made them, so Snakemake sees
    the same job and reruns nothing for it: outputs that record a fused job (mined_with)
    are planned with that job while every existing one of them records it too, the others
    with the per-pair rules `match` and `sample`. What is missing and not planned so is
    fused when two or more outputs are, so adding a D computes only its pairs. Off with
    `match: per_pair`, and while dvc.yaml is written (DVC's stages stay per pair)."""
    groups, named = {}, {}
    if config["match"] != "fused" or DVC_TEMPLATES:
        return named
    for gan, subset in sorted(
        {(anchor_of(d), subset_of(d)) for d in config["dictionaries"].values()}
    ):
        for shard in shards(gan, subset):
            paths = {
                disc: SHARD.format(gan=gan, subset=subset, disc=disc, shard=shard)
                for disc in partners(gan, subset)
            }
            paths[SAMPLES_TOKEN] = SAMPLES.format(gan=gan, subset=subset, shard=shard)
            exists = {k for k, p in paths.items() if os.path.exists(p)}
            records = {k: mined_with(paths[k]) for k in exists}
            planned, taken = [], set()
            for together in sorted({r for r in records.values() if len(r) > 1}):
                if (
                    set(together) <= set(paths)
                    and not taken & set(together)
                    and all(records.get(k, together) == together for k in together)
                ):
                    planned.append(together)
                    taken |= set(together)
            missing = tuple(k for k in paths if k not in exists and k not in taken)
            if len(missing) > 1 and missing != (SAMPLES_TOKEN,):
                planned.append(missing)
            for together in planned:
                groups.setdefault((gan, subset, together), []).append(shard)
    for (gan, subset, together), fused in groups.items():
        base = name = re.sub(r"\W", "_", f"match_fused_{gan}_{subset}")
        n = 0
        # another group of this pair, or a name that sanitises alike
        while name in named:
            n += 1
            name = f"{base}_{n}"
        discs = tuple(k for k in together if k != SAMPLES_TOKEN)
        named[name] = (gan, subset, discs, SAMPLES_TOKEN in together, fused)
    return named


def inherit_overrides(rule: str, source: str) -> None:
    """Give `rule` the --set-resources and --set-threads (a profile's or the command line's)
    of rule `source`, under those it has of its own, so that a profile names `match` alone for
    every fused rule. Called before `rule` is defined: Snakemake applies the overrides as it
    defines a rule and passes them on to the jobs it submits. They are kept in private
    attributes of Snakemake 9's ResourceSettings (pyproject.toml pins snakemake<10)."""
    settings = workflow.resource_settings
    resources = settings._parsed_overwrite_resources
    if source in resources:
        merged = resources[source].copy()
        merged.update(resources.get(rule, {}))
        resources[rule] = merged
    threads = settings._parsed_overwrite_threads
    if source in threads:
        threads.setdefault(rule, threads[source])


def samples_of(gan: str, subset: str) -> list:
    return [
        SAMPLES.format(gan=gan, subset=subset, shard=s) for s in shards(gan, subset)
    ]


NULLS = config["null"]["permutations"]


def null_matches(gan: str, subset: str, disc: str) -> list:
    """The null match stores of a pair, one per null permutation (none when they are off)."""
    return [
        NULL_MATCHES.format(gan=gan, subset=subset, disc=disc, r=r)
        for r in range(1, NULLS + 1)
    ]


def stability_of(name: str) -> list:
    """The stability tables of a dictionary's (G, D) pairs: none with a single shard."""
    d = dictionary(name)
    return (
        per_pair(STABILITY, pairs(name)[:-1])
        if len(shards(anchor_of(d), subset_of(d))) > 1
        else []
    )


def dissections_of(name: str) -> list:
    """The dissections of a dictionary's models: on face parts with `labels: faces`, on the
    shapes world for a dictionary of the shapes zoo, else none."""
    d, models = dictionary(name), models_of(name)
    if d.get("labels") == "faces":
        return [FACE_DISSECTION.format(gan=anchor_of(d), model=m) for m in models]
    zoo = config["zoo"]["models"]
    return (
        [DISSECTION.format(model=m) for m in models] if set(models) <= set(zoo) else []
    )


def per_pair(template: str, pair_list: list) -> list:
    """`template` (MATCHES, BESTBUDDIES) for each (gan, subset, disc) of `pair_list`."""
    return [template.format(gan=g, subset=s, disc=d) for g, s, d in pair_list]


def batch_size_of(gan: str):
    """The batch size of the sample and match jobs of `gan` (a generator or an anchor):
    params.yaml's models.<gan>.batch_size when set, else batch_size."""
    own = model_option(gan, "batch_size")
    return own if own is not None else _value(("batch_size",))
