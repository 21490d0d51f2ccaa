"""`python -m rosetta_steps.invert`: the paper's Table 1 on held-out real shapes-world images
(Sec. 4.1, Eq. 7; `inversion.table`): reconstruction alone against reconstruction plus Rosetta
guidance from each D and from all, PSNR, SSIM (and LPIPS with `--lpips`)
with 95% intervals and paired gains. Writes the metrics (JSON) and a sheet (PNG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.images import save_png
from .core.stores import write_json
from .inversion.objective import InversionSettings
from .inversion.table import inversion_table
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("invert", __doc__)
    options.add_guidance_options(parser)
    parser.add_argument("--images", type=int, default=32, help="held-out target images (32)")
    options.add_optimiser_options(parser, steps=500, lr=0.1)
    parser.add_argument("--rec", choices=("l1", "l2", "lpips"), default="l2",
                        help="reconstruction loss (lpips: needs AlexNet's cached weights)")
    parser.add_argument("--lpips", action="store_true",
                        help="measure LPIPS too (needs AlexNet's cached weights)")
    parser.add_argument("--beta", type=float, default=0.01,
                        help="Rosetta guidance weight (0.01)")
    parser.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    settings = InversionSettings(**options.optimiser_values(args),
                                 rec=args.rec)
    metrics, sheet = inversion_table(
        gan=args.gan, weights=options.parse_weights(args.weights, [args.gan, *args.discs]),
        concepts_csv=args.concepts, discs=args.discs, bestbuddies=args.bestbuddies,
        matches=args.matches, n=args.images, seed=args.seed, settings=settings,
        beta=args.beta, lpips=args.lpips, device=resolve_device(args.device))
    save_png(sheet, args.sheet)
    write_json(args.metrics, metrics)
    for method, m in metrics["methods"].items():
        lpips = f"   LPIPS {m['lpips']['mean']:.3f} ± {m['lpips']['ci95']:.3f}" \
            if "lpips" in m else ""
        print(f"{method:<28} PSNR {m['psnr']['mean']:6.2f} ± {m['psnr']['ci95']:.2f}   "
              f"SSIM {m['ssim']['mean']:.3f} ± {m['ssim']['ci95']:.3f}{lpips}")


if __name__ == "__main__":
    raise SystemExit(run(main))
