# Rosetta Neurons (Dravid et al., ICCV 2023) as a workflow: train the shapes zoo, sample, match
# each (G, D) pair shard by shard, reduce, best buddies, Rosetta concepts, pages, and the
# Rosetta-guided inversion table, single-neuron and out-of-distribution inversions, and edits.
# Settings: params.yaml (checked against workflow/schemas/params.schema.yaml).
# Run: snakemake --cores all   (the dictionaries marked default)   or a target such as
#      snakemake --cores 8 results/dictionary/briard.html


configfile: "params.yaml"


include: "workflow/rules/common.smk"


check_config(config)


include: "workflow/rules/zoo.smk"
include: "workflow/rules/mining.smk"
include: "workflow/rules/pages.smk"
include: "workflow/rules/inversion.smk"


rule all:
    input:
        [f"results/dictionary/{name}.html" for name in default_dictionaries()],
        [f"results/pairwise/{g}/{s}/{d}.html"
         for name in default_dictionaries() for g, s, d in pairs(name)[:-1]],
        [f"{ZOO_DIR}/samples.png" for _ in zoo_weights("shapes-gan")],
        "results/metrics/inversion.json",
        [f"results/edits/{EDITED}/{e}.png" for e in EDITS],
        [f"results/inversion/{INVERTED}/{sheet}.png" for sheet in ("neurons", "ood")],
    default_target: True
