# Rosetta Neurons (Dravid et al., ICCV 2023) as a workflow: train the shapes zoo, sample, match
# each (G, D) pair shard by shard, reduce, best buddies, Rosetta concepts, pages, and the
# Rosetta-guided inversion table, single-neuron and out-of-distribution inversions, and edits.
# Settings: params.yaml (checked against workflow/schemas/params.schema.yaml).
# Run: snakemake --cores all   (the dictionaries marked default)   or a target such as
#      snakemake --cores 8 results/dictionary/briard.html
#      snakemake --report report.zip   (after a run: the pages, metrics and sheets, with
#      captions from workflow/report/, in one file)


from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"


check_config(config)


include: "workflow/rules/zoo.smk"
include: "workflow/rules/mining.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/pages.smk"
include: "workflow/rules/inventory.smk"
include: "workflow/rules/inversion.smk"


rule all:
    default_target: True
    input:
        dictionary_outputs(default_dictionaries()),
        [ZOO_SHEET for _ in zoo_weights("shapes-gan")],
        INVERSION_METRICS,
        [EDIT_SHEET.format(name=EDITED, edit=e) for e in EDITS],
        [INVERSION_SHEET.format(name=INVERTED, sheet=s) for s in ("neurons", "ood")],


# Every job of dvc.yaml (workflow/scripts/dvc_stages.py): rule all's, and those of the
# dictionaries params.yaml marks `share: true`.
rule share:
    input:
        rules.all.input,
        dictionary_outputs(shared_dictionaries()),
