"""`python -m rosetta_steps.train MODEL --out WEIGHTS`: train one model of the shapes zoo
(`training.recipes`). Deterministic for a seed on CPU. Writes the weights (safetensors) and a
JSON of training metrics next to them (or at --metrics): losses at the start and end of
training, the held-out figures that show the model learned (`training.evaluate`) and the
command that trained it.
`--tiny` runs the same code for a few steps, for tests. `--checkpoint` lets the generator's
hours-long run stop and go on (`training.resume`).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from . import models
from .core import options
from .core.cli import UserError, run
from .core.devices import set_threads
from .training.recipes import save, settings_for, train
from .training.resume import Checkpoint


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("train", __doc__)
    parser.add_argument("model", help="a trainable zoo model, e.g. shapes-gan")
    parser.add_argument("--out", required=True, type=Path, help="weights file (.safetensors)")
    parser.add_argument("--metrics", type=Path, help="metrics JSON (default: next to --out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--pool", type=int, help="rendered training images")
    parser.add_argument("--eval-images", type=int, help="held-out images for the metrics")
    parser.add_argument("--tiny", action="store_true", help="a few steps, for tests")
    parser.add_argument("--judge", type=Path,
                        help="shapes-cnn-sup weights that judge a generator's samples")
    parser.add_argument("--checkpoint", type=Path,
                        help="shapes-gan: save the run's state here every --checkpoint-every "
                             "steps and, if the file exists, go on from it")
    parser.add_argument("--checkpoint-every", type=int, default=250, metavar="STEPS")
    options.add_threads_option(parser)
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        raise UserError(f"--out {args.out}: weights are written as .safetensors; "
                        "give a path ending in .safetensors")
    settings = settings_for(args.model, tiny=args.tiny, seed=args.seed, steps=args.steps,
                            batch_size=args.batch_size, lr=args.lr, pool=args.pool,
                            eval_images=args.eval_images)
    if args.judge is not None and models.get(args.model).kind != models.GENERATOR:
        raise UserError(f"--judge applies to generators; {args.model} is discriminative")
    if args.judge is not None and not args.judge.is_file():
        raise UserError(f"--judge {args.judge} not found; train shapes-cnn-sup first")
    set_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)  # tiny Adam moments and weights would slow CPU math
    checkpoint = (Checkpoint(args.checkpoint, every=args.checkpoint_every)
                  if args.checkpoint is not None else None)
    model, report = train(args.model, settings, judge=args.judge, checkpoint=checkpoint)
    report["command"] = shlex.join(["python", "-m", "rosetta_steps.train",
                                    *(sys.argv[1:] if argv is None else argv)])
    save(model, report, weights=args.out, metrics=args.metrics or args.out.with_suffix(".json"))


if __name__ == "__main__":
    raise SystemExit(run(main))
