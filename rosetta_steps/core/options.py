"""The command-line options that several steps share, defined once: models' weights, device
and threads, the shard of images to generate, the latent optimisation of the inverting steps
and their guidance inputs. Defaults equal params.yaml's, which the workflow passes anyway."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

from .cli import UserError
from .units import ALL


def step_parser(step: str, doc: str) -> argparse.ArgumentParser:
    """The parser of `rosetta <step>` (and `python -m rosetta_steps.<step>`, the same), described
    by its docstring's first paragraph."""
    return argparse.ArgumentParser(prog=f"rosetta {step}",
                                   description=doc.split("\n\n")[0])


def add_weights_option(parser: argparse.ArgumentParser) -> None:
    """`--weights NAME=PATH`, repeatable: one weights file per model (`parse_weights`), and
    `--declare NAME=JSON` for users' own models (`models.user.declare`)."""
    parser.add_argument("--weights", action="append", metavar="NAME=PATH",
                        help="a model's weights file (repeat per model); without one a model "
                        "loads its published weights, or random ones for the shapes zoo")
    parser.add_argument("--declare", action="append", metavar="NAME=JSON",
                        help="a user's own model: its params.yaml declaration as JSON (file, "
                        "builder, kind, layers, input or latent; repeat per model)")


def parse_weights(items: Sequence[str] | None, models: Sequence[str | None] | None = None
                  ) -> dict[str, str]:
    """Repeated `--weights NAME=PATH` options as {model name: weights path}; with `models`,
    a name that is not one of them is an error."""
    out = {}
    for item in items or []:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise UserError(f"--weights takes NAME=PATH, got {item!r}")
        if model in out:
            raise UserError(f"--weights names {model} twice")
        if models is not None and model not in models:
            names = ", ".join(m for m in models if m)
            raise UserError(f"--weights names {model}, which this step does not load ({names})")
        out[model] = path
    return out


def named_json(name: str, value: Mapping) -> str:
    """NAME=JSON (compact, keys sorted): how `--declare` and `--dataset` carry a params.yaml
    declaration to a step."""
    return f"{name}=" + json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


def parse_named_json(item: str, option: str) -> tuple[str, dict]:
    """The (name, declaration) of a `named_json` value given to `option`."""
    name, sep, text = item.partition("=")
    try:
        value = json.loads(text) if sep and name else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UserError(f"{option} takes NAME=JSON (an object), got {item[:80]!r}")
    return name, value


def add_controls_options(parser: argparse.ArgumentParser) -> None:
    """The controls of a dictionary (the discovery and dictionary steps): the controls step's
    tables per D and the best buddies of the Ds' untrained twins."""
    parser.add_argument("--controls", nargs="+", default=[], metavar="CSV",
                        help="the controls step's pair tables, one per D, in the Ds' order")
    parser.add_argument("--control-units", nargs="+", default=[], metavar="CSV",
                        help="its unit tables, in the same order")
    parser.add_argument("--twin-bestbuddies", nargs="+", default=[], metavar="CSV",
                        help="the best-buddy CSVs of every D's untrained twins")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all)")


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--threads`, the options of every step that runs models on a device."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or "
                        "cuda[:i] (default auto)")
    add_threads_option(parser)


def add_budget_option(parser: argparse.ArgumentParser) -> None:
    """`--mem-mb`: the memory a match or reduce job may use (`mining.budget`)."""
    parser.add_argument("--mem-mb", type=float, default=16000, metavar="MB",
                        help="memory for the whole job; the correlation states get what the "
                        "process, models and a batch's maps leave, in row blocks of G units "
                        "(default 16000)")


def add_shard_options(parser: argparse.ArgumentParser) -> None:
    """The images of a shard and how they are generated (sample, match), and the device."""
    parser.add_argument("--subset", default=ALL, help="'all' or a class name (default all); "
                        "a data set's name with --dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first image index")
    parser.add_argument("--count", type=int, required=True, help="images in this shard")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--truncation", type=float, help="latent truncation (model default)")
    add_device_options(parser)


def add_optimiser_options(parser: argparse.ArgumentParser, steps: int, lr: float,
                          alpha: float = 0.1) -> None:
    """The latent optimisation of the inverting steps (Eq. 5-7): seed, Adam steps and
    learning rate, the latent regulariser, and the device."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=steps, help=f"Adam steps ({steps})")
    parser.add_argument("--lr", type=float, default=lr, help=f"learning rate ({lr})")
    parser.add_argument("--alpha", type=float, default=alpha,
                        help=f"latent regulariser weight ({alpha})")
    parser.add_argument("--reg", choices=("l1", "l2"), default="l2")
    add_device_options(parser)


def optimiser_values(args: argparse.Namespace) -> dict:
    """The values of `add_optimiser_options` as keywords of `InversionSettings`."""
    return {"steps": args.steps, "lr": args.lr, "alpha": args.alpha, "reg": args.reg}


def add_guidance_options(parser: argparse.ArgumentParser) -> None:
    """The inputs of guidance by several Ds (the invert and ood steps): G, the Ds, their
    weights, the concept table, and one best-buddy table and one match store per D."""
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--discs", nargs="+", required=True, help="discriminative models")
    add_weights_option(parser)
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--bestbuddies", nargs="+", required=True, help="one per D, in order")
    parser.add_argument("--matches", nargs="+", required=True, help="one per D, in order")
