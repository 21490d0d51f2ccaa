"""`python -m rosetta_steps.pairwise`: the best-buddy pairs of one (G, D) pair as one HTML page
(`pages.pairwise`): every pair (Eq. 3), most correlated first, with both units' normalised
maps over the generated images where the G unit is most active; with the pair's controls
table, each pair's r in D's untrained twins, its gain over them and its q_learned.

    python -m rosetta_steps.pairwise --matches M.zarr --bestbuddies BB.csv --samples S*.zarr \
        --weights shapes-gan=W.safetensors --weights shapes-cnn-sup=W2.safetensors \
        --examples 4 --device cpu --out results/pairwise/shapes-gan/all/shapes-cnn-sup.html
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.stores import write_text
from .models.user import declare
from .pages.pairwise import MAX_PAIRS, build_pairwise


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("pairwise", __doc__)
    parser.add_argument("--matches", required=True, help="match store (Zarr) of the pair")
    parser.add_argument("--bestbuddies", required=True, help="the pair's best-buddy CSV")
    parser.add_argument("--null-bestbuddies", metavar="CSV",
                        help="the pair's null best buddies (bestbuddies --null-out)")
    parser.add_argument("--controls", metavar="CSV",
                        help="the pair's controls table (the controls step's pair table)")
    parser.add_argument("--samples", nargs="+", required=True, help="sample stores (Zarr)")
    options.add_weights_option(parser)
    parser.add_argument("--examples", type=int, default=4, help="images per pair (default 4)")
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS,
                        help=f"pairs shown with heatmaps, most correlated first ({MAX_PAIRS})")
    options.add_device_options(parser)
    parser.add_argument("--out", required=True, help="HTML file to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    html, s = build_pairwise(matches=args.matches, bestbuddies=args.bestbuddies,
                             null_bestbuddies=args.null_bestbuddies, controls=args.controls,
                             samples=args.samples, weights=options.parse_weights(args.weights),
                             examples=args.examples, device=resolve_device(args.device),
                             max_pairs=args.max_pairs)
    write_text(args.out, html)
    print(f"{s['shown']} of {s['pairs']} pairs, {s['heatmaps']} heatmaps in "
          f"{s['seconds']:.1f} s -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
