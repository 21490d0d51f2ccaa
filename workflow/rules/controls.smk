# The controls (docs/guides/controls.md): untrained twins of each D, mined beside it in the
# match jobs, and the pixel control (a pseudo-model mined the same way); per (G, D) pair the
# controls table, and per dictionary the Rosetta merge of its twins (decoy concepts).


# dvc params: seed batch_size device threads models.{gan} datasets.{subset}
rule twin:
    input:
        code=lambda w: code("rosetta_steps.twin", w.gan, w.twin),
        weights=lambda w: weights_files(w.gan),
        listing=lambda w: [
            f
            for s in shards(w.gan, w.subset)
            if shard_range(s)[0] < twin_count(w.gan, w.subset)
            for f in listing_files(w.gan, w.subset, s)
        ],
    output:
        TWIN_WEIGHTS,
    log:
        log("twin", "gan", "subset", "twin"),
    wildcard_constraints:
        twin=r"twin[1-9][0-9]*:[A-Za-z0-9_.:-]+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        weights=lambda w: weights_args(w.gan) + " " + declare_args(twin_base(w.twin)),
        source=lambda w: source_args(w.gan, w.subset),
        truncation=lambda w: truncation_arg(w.gan),
        seed=setting("seed"),
        images=lambda w: twin_count(w.gan, w.subset),
        batch_size=lambda w: batch_size_of(w.gan),
    shell:
        step(
            "twin",
            "--gan {wildcards.gan} --twin {wildcards.twin} {params.weights} {params.source}"
            " --seed {params.seed} --count {params.images}"
            " --batch-size {params.batch_size} {params.truncation}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )


# dvc params: controls
rule controls:
    input:
        code=code("rosetta_steps.controls"),
        bestbuddies=BESTBUDDIES,
        matches=MATCHES,
        twin_matches=lambda w: [
            MATCHES.format(gan=w.gan, subset=w.subset, disc=t)
            for t in twins_of(w.gan, w.subset, w.disc)
        ],
        twin_bestbuddies=lambda w: [
            BESTBUDDIES.format(gan=w.gan, subset=w.subset, disc=t)
            for t in twins_of(w.gan, w.subset, w.disc)
        ],
        pixels=lambda w: [
            MATCHES.format(gan=w.gan, subset=w.subset, disc=p)
            for p in filter(None, [pixel_model(w.gan, w.subset)])
        ],
    output:
        pairs=CONTROLS,
        units=CONTROL_UNITS,
    log:
        log("controls", "gan", "subset", "disc"),
    wildcard_constraints:
        disc=NAME,
    conda:
        ENV
    params:
        twins=lambda w, input: option("--twin-matches", input.twin_matches)
        + " "
        + option("--twin-bestbuddies", input.twin_bestbuddies),
        pixels=lambda w, input: option("--pixels", input.pixels),
    shell:
        step(
            "controls",
            "--bestbuddies {input.bestbuddies:q} --matches {input.matches:q}"
            " {params.twins} {params.pixels} --out {output.pairs:q} --units {output.units:q}",
        )


# dvc params: k bb_rule bb_fdr
rule rosetta_decoys:
    input:
        code=code("rosetta_steps.rosetta"),
        bestbuddies=lambda w: [
            BESTBUDDIES.format(gan=g, subset=s, disc=f"twin{w.seed}:{d}")
            for g, s, d in pairs(w.name)[:-1]
        ],
        self_matches=lambda w: per_pair(MATCHES, pairs(w.name)[-1:]),
        self_nulls=lambda w: self_nulls(w.name),
    output:
        DECOYS,
    log:
        log("rosetta_decoys", "name", "seed"),
    wildcard_constraints:
        name=NAME,
        seed=r"[1-9][0-9]*",
    conda:
        ENV
    params:
        **ROSETTA_PARAMS,
    shell:
        step("rosetta", ROSETTA_ARGS)
