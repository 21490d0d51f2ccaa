"""`python -m rosetta_steps.zoo check|manifest`: the shapes zoo that ships in `data/zoo/shapes/`
(`training.shipping`).

`check MODEL --weights W --manifest M --out OUT --metrics J` checks a shipped weights file
against the manifest's sha256 (one line on a mismatch), then copies it to OUT and the
manifest's record of it (command, settings, seed, held-out metrics) to J: the workflow mines
only checked files. `manifest NAME=WEIGHTS... --out M` writes the manifest of freshly trained
models from the train step's reports next to each weights file (`make zoo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import UserError, run
from .training.shipping import place_shipped, write_manifest


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("zoo", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a shipped weights file and put it in place")
    check.add_argument("model", help="a zoo model, e.g. shapes-gan")
    check.add_argument("--weights", type=Path, required=True, help="the shipped weights file")
    check.add_argument("--manifest", type=Path, required=True, help="the zoo's manifest.json")
    check.add_argument("--out", type=Path, required=True, help="where the workflow reads it")
    check.add_argument("--metrics", type=Path, required=True,
                       help="JSON: the manifest's record of the model")
    write = sub.add_parser("manifest", help="the manifest of trained models")
    write.add_argument("trained", nargs="+", metavar="NAME=WEIGHTS",
                       help="a trained model and its weights (its report is WEIGHTS' .json)")
    write.add_argument("--out", type=Path, required=True, help="manifest.json to write")
    args = parser.parse_args(argv)
    if args.command == "check":
        place_shipped(args.model, args.weights, args.manifest, out=args.out,
                      metrics=args.metrics)
        return
    trained = {}
    for item in args.trained:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{item!r}: give each trained model as NAME=WEIGHTS")
        weights = Path(path)
        if not weights.is_file():
            raise UserError(f"{weights} not found; train {name} first")
        trained[name] = (weights, weights.with_suffix(".json"))
    write_manifest(trained, args.out)


if __name__ == "__main__":
    raise SystemExit(run(main))
