"""`python -m rosetta_steps.discovery`: a dictionary's discoveries against the null model
(`mining.discovery`): per D the observed best buddies against the null's, with how many pass
q <= LEVEL; the Rosetta units observed against the null's; the q values of each concept's
pairs; with the pairs' stability tables (`stability`), those too, with the models'
dissections (`dissect`), each concept's label and IoU, and with the controls (`controls`,
the twins' best buddies and decoy concepts) each D's gain over its untrained twins and each
concept's verdict (`mining.verdicts`). Writes JSON (a DVC metric), and with
`--plot` the observed and null counts per D as a list of records (a DVC plot).

    python -m rosetta_steps.discovery --bestbuddies BB1.csv ... --null-bestbuddies N1.csv ... \
        --concepts concepts.csv --level 0.05 --out discovery.json [--plot counts.json]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import UserError, run
from .core.stores import read_json, write_json, write_text
from .mining.buddies import read_best_buddies, read_null_best_buddies
from .mining.concepts import read_concept_table
from .mining.controls import read_pair_controls, read_unit_controls
from .mining.discovery import counts_plot, discovery
from .mining.dissection import read_dissection
from .mining.verdicts import with_controls


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("discovery", __doc__)
    parser.add_argument("--bestbuddies", nargs="+", required=True,
                        help="best-buddy CSVs with q, one per D model")
    parser.add_argument("--null-bestbuddies", nargs="+", required=True,
                        help="their null best-buddy CSVs, in the same order")
    parser.add_argument("--stability", nargs="+", default=[], metavar="JSON",
                        help="stability tables of the pairs (the stability step)")
    parser.add_argument("--dissections", nargs="+", default=[], metavar="CSV",
                        help="dissections of the dictionary's models (the dissect step)")
    parser.add_argument("--concepts", required=True, help="the dictionary's concept CSV")
    options.add_controls_options(parser)
    parser.add_argument("--decoys", nargs="+", default=[], metavar="CSV",
                        help="concept CSVs of the Rosetta merge of the twins (one per seed)")
    parser.add_argument("--level", type=float, default=0.05,
                        help="q level a pair must pass to count as significant (0.05)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--plot", type=Path,
                        help="also write the observed and null counts per D here (JSON records)")
    args = parser.parse_args(argv)
    if not 0 < args.level <= 1:
        raise UserError(f"--level {args.level}: a q-value level is in (0, 1]")
    concepts = read_concept_table(args.concepts)
    summary = discovery([read_best_buddies(p) for p in args.bestbuddies],
                        [read_null_best_buddies(p) for p in args.null_bestbuddies],
                        concepts, level=args.level,
                        stability=[read_json(p, "stability table") for p in args.stability],
                        dissections=[read_dissection(p) for p in args.dissections])
    if args.controls:
        summary = with_controls(summary, concepts,
                                pairs=[read_pair_controls(p) for p in args.controls],
                                units=[read_unit_controls(p) for p in args.control_units],
                                twin_tables=[read_best_buddies(p)
                                             for p in args.twin_bestbuddies],
                                decoys=[read_concept_table(p) for p in args.decoys],
                                level=args.level)
    write_json(args.out, summary)
    if args.plot:
        write_text(args.plot, json.dumps(counts_plot(summary), indent=2) + "\n")
    for disc, s in summary["best_buddies"].items():
        print(f"{disc:<24} {s['observed']:>6} best buddies, null {s['null']['mean']:.1f}, "
              f"{s['significant']} at q <= {args.level}")
    units = summary["rosetta_units"]
    print(f"Rosetta units: {units['observed']}, null {units['null']['mean']:.1f}")
    if "verdicts" in summary:
        print("verdicts: " + ", ".join(f"{n} {v}" for v, n in summary["verdicts"].items()))
    if "decoy_concepts" in summary:
        d = summary["decoy_concepts"]
        print(f"concepts: {d['observed']}, decoys (twins in place of the Ds) "
              f"{d['decoys']['per_twin']}")


if __name__ == "__main__":
    raise SystemExit(run(main))
