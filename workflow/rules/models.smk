# Models: zoo models are shipped or trained by the workflow; the others take params.yaml's
# options (weights, a user's own model file, truncation). And the code a step runs: the package
# modules it imports and those that define its models, as the inputs of its jobs.

import ast
import re
import shlex
from functools import cache
from pathlib import Path

from rosetta_steps.core.options import named_json


def zoo_weights(model: str) -> list:
    """The weights file of zoo model `model` that jobs read: the checked shipped file or the
    workflow's own training (zoo.source); empty for models from elsewhere."""
    if model not in config["zoo"]["models"]:
        return []
    source = ZOO_WEIGHTS if config["zoo"]["source"] == "shipped" else TRAINED_WEIGHTS
    return [source.format(model=model)]


def model_option(model: str, key: str):
    return (config["models"].get(model) or {}).get(key)


def twin_base(model: str) -> str | None:
    """The model an untrained twin `twin<s>:<model>` is of (models.untrained), else None."""
    match = re.fullmatch(r"twin[1-9][0-9]*:(.+)", model)
    return match.group(1) if match else None


def weights_path(model: str, gan: str = "", subset: str = "") -> str | None:
    """The weights file of `model`; a twin's is made for the (gan, subset) it is mined on."""
    if twin_base(model):
        return TWIN_WEIGHTS.format(gan=gan, subset=subset, twin=model)
    return (zoo_weights(model) or [model_option(model, "weights")])[0]


def weights_files(model: str, gan: str = "", subset: str = "") -> list:
    """The weights file a job of `model` reads, as an input: the zoo's trained one or
    params.yaml's (none for "random" or for the libraries' caches), or a twin's."""
    path = weights_path(model, gan, subset)
    return [path] if path and path != "random" else []


USER_KEYS = ("file", "builder", "kind", "weights", "layers", "input", "latent")


def user_model(model: str) -> dict | None:
    """A user's own model's declaration (params.yaml's models.NAME with a `file`), or None."""
    options = config["models"].get(model) or {}
    return {k: options.get(k) for k in USER_KEYS} if options.get("file") else None


def weights_args(*names: str, gan: str = "", subset: str = "") -> str:
    """`--weights NAME=PATH` for each model with a weights file (a twin's for (gan, subset))
    and the `declare_args` of the models and of those the twins are of, each model once.
    """
    names = list(dict.fromkeys(names))
    weights = [
        f"--weights {shlex.quote(f'{m}={weights_path(m, gan, subset)}')}"
        for m in names
        if weights_path(m, gan, subset)
    ]
    return " ".join(
        [*weights, declare_args(*(twin_base(m) or m for m in names))]
    ).strip()


def declare_args(*names: str) -> str:
    """`--declare NAME=JSON` for each user's own model among `names` (models.user), once."""
    return " ".join(
        f"--declare {shlex.quote(named_json(m, user_model(m)))}"
        for m in dict.fromkeys(names)
        if user_model(m)
    )


def truncation_arg(gan: str) -> str:
    t = model_option(gan, "truncation")
    return "" if t is None else f"--truncation {t}"


def code(module: str, *models: str) -> list:
    """The source files of a step module and of every package module it imports, and those
    of the module that defines each model the job uses (the paper's zoo, the faces zoo, a
    user's own file; the shapes zoo and timm:/open_clip: names are defined as the package is
    imported), so that a code change
    reruns exactly the jobs whose steps it can affect."""
    known = registered_models()
    files = set(_closure(module))
    for m in (twin_base(m) or m for m in models):
        if user_model(m):
            files |= _closure(f"{PACKAGE.name}.models.user") | {user_model(m)["file"]}
        elif m in known and known[m][1] != f"{PACKAGE.name}.models":
            files |= _closure(known[m][1])
    return sorted(files)


def models_of(name: str) -> list:
    """The generator and the discriminative models of a dictionary."""
    return sorted({m for gan, _, disc in pairs(name) for m in (gan, disc)})


@cache
def _closure(module: str) -> frozenset:
    """The files of `module` and of the package modules it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name.split(".")[0] != PACKAGE.name:
            continue
        path = PACKAGE.parent / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                todo.append(target)
                todo += [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return frozenset(str(p) for p in seen)
