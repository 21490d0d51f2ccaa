# Rosetta-guided inversion (Sec. 4.1): the paper's Table 1 on held-out images (real shapes-world
# images, or G's own from unseen latents), for params.yaml's `inversion.dictionary`: PSNR, SSIM (and LPIPS with `inversion.lpips`)
# of reconstruction alone against reconstruction plus Rosetta guidance from each D
# and from all, with a sheet to look at.

INVERTED = config["inversion"]["dictionary"]
INVERTED_GAN = anchor_of(dictionary(INVERTED))
INVERTED_DISCS = dictionary(INVERTED)["discs"]
# The inputs of guidance by every D of the dictionary (invert, ood).
GUIDANCE = {
    "concepts": CONCEPTS.format(name=INVERTED),
    "bestbuddies": per_pair(BESTBUDDIES, pairs(INVERTED)[:-1]),
    "matches": per_pair(MATCHES, pairs(INVERTED)[:-1]),
    "weights": sum((weights_files(p[2]) for p in pairs(INVERTED)), []),
}
GUIDANCE_ARGS = (
    "--gan {params.gan} --discs {params.discs} {params.weights}"
    " --concepts {input.concepts:q} --bestbuddies {input.bestbuddies:q}"
    " --matches {input.matches:q}"
)
OPTIMISER_ARGS = (
    " --seed {params.seed} --steps {params.settings[steps]}"
    " --lr {params.settings[lr]} --alpha {params.settings[alpha]}"
)


# dvc params: seed device threads inversion dictionaries.{inversion.dictionary}
rule invert:
    input:
        **GUIDANCE,
        code=code("rosetta_steps.invert", *models_of(INVERTED)),
    output:
        metrics=report(
            INVERSION_METRICS,
            caption="../report/table1.rst",
            category="Inversion",
            subcategory=INVERTED,
            labels={"dictionary": INVERTED, "result": "Table 1 (JSON)"},
        ),
        sheet=report(
            INVERSION_SHEET.format(name=INVERTED, sheet="table1"),
            caption="../report/table1.rst",
            category="Inversion",
            subcategory=INVERTED,
            labels={"dictionary": INVERTED, "result": "Table 1"},
        ),
    log:
        log("invert"),
    benchmark:
        "benchmarks/invert.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        gan=INVERTED_GAN,
        discs=" ".join(INVERTED_DISCS),
        weights=weights_args(*(p[2] for p in pairs(INVERTED))),
        settings=lambda w: settings("inversion"),
        lpips="--lpips" if config["inversion"]["lpips"] else "",
        seed=setting("seed"),
    shell:
        step(
            "invert",
            GUIDANCE_ARGS
            + " --images {params.settings[images]}"
            + OPTIMISER_ARGS
            + " --reg {params.settings[reg]} --rec {params.settings[rec]} {params.lpips}"
            " --beta {params.settings[beta]}"
            + DEVICE_ARGS
            + " --metrics {output.metrics:q} --sheet {output.sheet:q}",
        )


# Edits (Sec. 4.2) of generated images of params.yaml's `edits.dictionary`: one before/after
# sheet and one measurement file per edit.

EDITED = config["edits"]["dictionary"]
EDITED_GAN = anchor_of(dictionary(EDITED))
EDITS = ["shift", "zoom", "copy_paste", "remove", "add"]


# dvc params: seed device threads edits dictionaries.{edits.dictionary}
rule edit:
    input:
        code=code("rosetta_steps.edit", EDITED_GAN),
        concepts=CONCEPTS.format(name=EDITED),
        matches=per_pair(MATCHES, pairs(EDITED)[-1:]),
        weights=weights_files(EDITED_GAN),
    output:
        sheet=report(
            EDIT_SHEET.format(name=EDITED, edit="{edit}"),
            caption="../report/edit.rst",
            category="Edits",
            subcategory=EDITED,
            labels={"edit": "{edit}", "result": "before and after"},
        ),
        metrics=report(
            EDIT_METRICS.format(name=EDITED, edit="{edit}"),
            caption="../report/edit.rst",
            category="Edits",
            subcategory=EDITED,
            labels={"edit": "{edit}", "result": "measurements (JSON)"},
        ),
    log:
        log("edit", "edit"),
    wildcard_constraints:
        edit="|".join(EDITS),
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        gan=EDITED_GAN,
        subset=subset_of(dictionary(EDITED)),
        weights=weights_args(EDITED_GAN),
        truncation=truncation_arg(EDITED_GAN),
        settings=lambda w: settings("edits"),
        concept=(
            ""
            if config["edits"]["concept"] is None
            else f"--concept {config['edits']['concept']}"
        ),
        seed=setting("seed"),
    shell:
        step(
            "edit",
            "--gan {params.gan} --subset {params.subset} {params.weights}"
            " {params.truncation} --concepts {input.concepts:q} --matches {input.matches:q}"
            " --edit {wildcards.edit} --images {params.settings[images]}"
            + OPTIMISER_ARGS
            + " --shift {params.settings[shift]} --zoom {params.settings[zoom]}"
            " --scale {params.settings[scale]} {params.concept}"
            + DEVICE_ARGS
            + " --metrics {output.metrics:q} --sheet {output.sheet:q}",
        )


# Single Rosetta neurons visualised by inversion from several random starts (Fig. 1), against
# the first D of the dictionary, and sketches and cartoons turned into the generator's images
# through the Rosetta maps of all its Ds (Fig. 5).

OOD_TARGETS = sorted(str(p) for p in Path(config["inversion"]["ood"]).glob("*.png"))


# dvc params: seed device threads inversion dictionaries.{inversion.dictionary}
rule neurons:
    input:
        code=code("rosetta_steps.neurons", *models_of(INVERTED)),
        concepts=CONCEPTS.format(name=INVERTED),
        bestbuddies=per_pair(BESTBUDDIES, pairs(INVERTED)[:1]),
        matches=per_pair(MATCHES, pairs(INVERTED)[:1]),
        weights=sum(
            (weights_files(p[2]) for p in pairs(INVERTED)[:1] + pairs(INVERTED)[-1:]),
            [],
        ),
    output:
        sheet=report(
            INVERSION_SHEET.format(name=INVERTED, sheet="neurons"),
            caption="../report/neurons.rst",
            category="Inversion",
            subcategory=INVERTED,
            labels={"dictionary": INVERTED, "result": "single Rosetta neurons"},
        ),
    log:
        log("neurons"),
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        gan=INVERTED_GAN,
        disc=INVERTED_DISCS[0],
        weights=weights_args(INVERTED_DISCS[0], INVERTED_GAN),
        settings=lambda w: settings("inversion"),
        seed=setting("seed"),
    shell:
        step(
            "neurons",
            "--gan {params.gan} --disc {params.disc} {params.weights}"
            " --concepts {input.concepts:q} --bestbuddies {input.bestbuddies:q}"
            " --matches {input.matches:q} --starts {params.settings[starts]}"
            + OPTIMISER_ARGS
            + " --reg {params.settings[reg]}"
            + DEVICE_ARGS
            + " --sheet {output.sheet:q}",
        )


# dvc params: seed device threads inversion dictionaries.{inversion.dictionary}
rule ood:
    input:
        **GUIDANCE,
        code=code("rosetta_steps.ood", *models_of(INVERTED)),
        targets=OOD_TARGETS,
    output:
        sheet=report(
            INVERSION_SHEET.format(name=INVERTED, sheet="ood"),
            caption="../report/ood.rst",
            category="Inversion",
            subcategory=INVERTED,
            labels={"dictionary": INVERTED, "result": "out-of-distribution targets"},
        ),
    log:
        log("ood"),
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        gan=INVERTED_GAN,
        discs=" ".join(INVERTED_DISCS),
        weights=weights_args(*(p[2] for p in pairs(INVERTED))),
        settings=lambda w: settings("inversion"),
        seed=setting("seed"),
    shell:
        step(
            "ood",
            GUIDANCE_ARGS
            + " --targets {input.targets:q}"
            + OPTIMISER_ARGS
            + " --reg {params.settings[reg]}"
            + DEVICE_ARGS
            + " --sheet {output.sheet:q}",
        )
