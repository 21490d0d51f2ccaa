# The pages a person opens: the Rosetta dictionary of each dictionary and the best-buddy pairs
# of each (G, D) pair. They reuse the sampled images and recompute only the maps they show.


# dvc params: k bb_rule examples device null dissect controls dictionaries.{name}
rule dictionary:
    input:
        **CONTROL_INPUTS,
        code=lambda w: code("rosetta_steps.dictionary", *models_of(w.name)),
        templates=TEMPLATES,
        concepts=CONCEPTS,
        samples=lambda w: samples_of(*pairs(w.name)[0][:2]),
        self_matches=lambda w: per_pair(MATCHES, pairs(w.name)[-1:]),
        matches=lambda w: per_pair(MATCHES, pairs(w.name)[:-1]),
        bestbuddies=lambda w: per_pair(BESTBUDDIES, pairs(w.name)[:-1]),
        nulls=lambda w: per_pair(NULL_BESTBUDDIES, pairs(w.name)[:-1]) if NULLS else [],
        stability=lambda w: stability_of(w.name),
        dissections=lambda w: dissections_of(w.name),
        weights=lambda w: sum((weights_files(p[2]) for p in pairs(w.name)), []),
    output:
        report(
            DICTIONARY,
            caption="../report/dictionary.rst",
            category="Dictionaries",
            subcategory="{name}",
            labels={"dictionary": "{name}", "result": "Rosetta dictionary page"},
        ),
    log:
        log("dictionary", "name"),
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        weights=lambda w: weights_args(*(p[2] for p in pairs(w.name))),
        nulls=lambda w, input: option("--null-bestbuddies", input.nulls),
        stability=lambda w, input: option("--stability", input.stability),
        dissections=lambda w, input: option("--dissections", input.dissections),
        notes=lambda w: dataset_notes(w.name),
        controls=control_options,
        k=setting("k"),
        examples=setting("examples"),
    shell:
        step(
            "dictionary",
            "--name {wildcards.name} --concepts {input.concepts:q}"
            " --samples {input.samples:q} --self-matches {input.self_matches:q}"
            " --matches {input.matches:q} --bestbuddies {input.bestbuddies:q} {params.nulls}"
            " {params.stability} {params.dissections} {params.notes} {params.controls}"
            " {params.weights} --k {params.k} --examples {params.examples}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )


# dvc params: examples device null controls
rule pairwise:
    input:
        code=lambda w: code("rosetta_steps.pairwise", w.gan, w.disc),
        templates=TEMPLATES,
        matches=MATCHES,
        bestbuddies=BESTBUDDIES,
        nulls=[NULL_BESTBUDDIES] if NULLS else [],
        samples=lambda w: samples_of(w.gan, w.subset),
        weights=lambda w: weights_files(w.gan) + weights_files(w.disc),
        # the pair's controls table: when a dictionary with the controls on has this D
        controls=lambda w: sorted(
            {p for n in config["dictionaries"] for p in controls_outputs(n, CONTROLS)}
            & {CONTROLS.format(gan=w.gan, subset=w.subset, disc=w.disc)}
        ),
    output:
        report(
            PAIRWISE,
            caption="../report/pairwise.rst",
            category="Pairwise best buddies",
            subcategory="{gan} / {subset}",
            labels={"generator": "{gan}", "subset": "{subset}", "model": "{disc}"},
        ),
    log:
        log("pairwise", "gan", "subset", "disc"),
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        weights=lambda w: weights_args(w.gan, w.disc),
        nulls=lambda w, input: option("--null-bestbuddies", input.nulls),
        controls=lambda w, input: option("--controls", input.controls),
        examples=setting("examples"),
    shell:
        step(
            "pairwise",
            "--matches {input.matches:q} --bestbuddies {input.bestbuddies:q}"
            " {params.nulls} {params.controls} --samples {input.samples:q} {params.weights} --examples {params.examples}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )
