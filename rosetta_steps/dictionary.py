"""`python -m rosetta_steps.dictionary`: the Rosetta dictionary as one HTML page (paper,
Fig. 2-3; `pages.dictionary`). For each concept of the rosetta step, largest first: the
generated images where its G units are most active and every model's normalised activation
map of its unit in the concept over each image; a per-image view, and charts. With the
controls step's tables (`--controls`), how each D compares with its untrained twins and the
pixels, and each concept's verdict: learned, pixels or architecture.

    python -m rosetta_steps.dictionary --name shapes --concepts C.csv --samples S*.zarr \
        --self-matches SELF.zarr --matches M*.zarr --bestbuddies B*.csv \
        --weights shapes-gan=W.safetensors ... --k 5 --examples 4 --out shapes.html
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.stores import write_text
from .models.user import declare
from .pages.dictionary import build_dictionary


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("dictionary", __doc__)
    parser.add_argument("--name", required=True, help="the dictionary's name (page title)")
    parser.add_argument("--concepts", required=True, help="concept CSV of the rosetta step")
    parser.add_argument("--samples", nargs="+", required=True, help="sample stores (Zarr)")
    parser.add_argument("--self-matches", required=True, help="G-vs-G match store (Zarr)")
    parser.add_argument("--matches", nargs="+", required=True,
                        help="match stores of (G, D) pairs, one per D, in column order")
    parser.add_argument("--bestbuddies", nargs="+", required=True, help="best-buddy CSVs")
    parser.add_argument("--null-bestbuddies", nargs="+", default=[], metavar="CSV",
                        help="the null model's best buddies per D (bestbuddies --null-out)")
    parser.add_argument("--stability", nargs="+", default=[], metavar="JSON",
                        help="the pairs' stability tables (the stability step)")
    parser.add_argument("--dissections", nargs="+", default=[], metavar="CSV",
                        help="dissections of its models, to label each concept (dissect)")
    options.add_controls_options(parser)
    parser.add_argument("--note", action="append", default=[], metavar="TEXT",
                        help="a line about the inputs to show under the page's header (the "
                        "workflow gives the links a data set's folder skipped); repeatable")
    options.add_weights_option(parser)
    parser.add_argument("--k", type=int, default=5, help="the K mined with (shown in header)")
    parser.add_argument("--examples", type=int, default=4, help="example images per concept")
    options.add_device_options(parser)
    parser.add_argument("--out", required=True, help="HTML file to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    html, s = build_dictionary(name=args.name, concepts=args.concepts, samples=args.samples,
                               self_matches=args.self_matches, matches=args.matches,
                               bestbuddies=args.bestbuddies,
                               null_bestbuddies=args.null_bestbuddies,
                               stability=args.stability, dissections=args.dissections,
                               notes=args.note, controls=args.controls,
                               control_units=args.control_units,
                               twin_bestbuddies=args.twin_bestbuddies,
                               weights=options.parse_weights(args.weights), k=args.k,
                               examples=args.examples, device=resolve_device(args.device))
    write_text(args.out, html)
    print(f"{s['concepts']} concepts, {s['heatmaps']} heatmaps on {s['images']} images in "
          f"{s['seconds']:.1f} s -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
