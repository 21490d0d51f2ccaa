"""`python -m rosetta_steps.samplesheet`: real shapes-world images next to a generator's samples
(`training.evaluate.sample_sheet`), a picture for a person to judge the generator by: the
left panel is drawn from the world the zoo was trained on, the right panel from the generator
at held-out latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import models
from .core import options
from .core.cli import UserError, run
from .core.devices import set_threads
from .core.images import save_png
from .models.user import declare
from .training.evaluate import sample_sheet


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("samplesheet", __doc__)
    parser.add_argument("--gan", default="shapes-gan")
    options.add_weights_option(parser)
    parser.add_argument("--out", type=Path, required=True, help="PNG file")
    parser.add_argument("--n", type=int, default=32, help="images per panel")
    parser.add_argument("--seed", type=int, default=0)
    options.add_threads_option(parser)
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if models.get(args.gan).kind != models.GENERATOR:
        raise UserError(f"{args.gan} is not a generator")
    weights = options.parse_weights(args.weights, [args.gan])
    sheet = sample_sheet(args.gan, weights.get(args.gan), n=args.n, seed=args.seed)
    save_png(sheet, args.out)


if __name__ == "__main__":
    raise SystemExit(run(main))
