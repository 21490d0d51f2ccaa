# Mining (paper, Sec. 3): sample and match shard by shard, reduce each (G, D) pair to its match
# store, best buddies per pair, then the Rosetta units and concepts of each dictionary.

SHARD_RANGE = r"\d{6}-\d{6}"
MATCH_PARAMS = {"mem_mb": setting("mem_mb"), "autocast": setting("autocast")}
MATCH_ARGS = " --mem-mb {params.mem_mb} --autocast {params.autocast}"
# The whole match job's memory: its states get what the rest leaves (budget.py).
MATCH_MB = config["mem_mb"]


# dvc params: seed batch_size device threads models.{gan} datasets.{subset}
rule sample:
    input:
        code=lambda w: code("rosetta_steps.sample", w.gan),
        weights=lambda w: weights_files(w.gan),
        listing=lambda w: listing_files(w.gan, w.subset, w.shard),
    output:
        directory(SAMPLES),
    log:
        log("sample", "gan", "subset", "shard"),
    wildcard_constraints:
        shard=SHARD_RANGE,
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        range=lambda w: shard_range(w.shard),
        weights=lambda w: weights_args(w.gan),
        source=lambda w: source_args(w.gan, w.subset),
        listing=lambda w, input: option("--listing", input.listing),
        truncation=lambda w: truncation_arg(w.gan),
        seed=setting("seed"),
        batch_size=lambda w: batch_size_of(w.gan),
    shell:
        step(
            "sample",
            "--gan {wildcards.gan} {params.weights} {params.source} {params.listing}"
            " --seed {params.seed} --start {params.range[0]} --count {params.range[1]}"
            " --batch-size {params.batch_size} {params.truncation}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )


# dvc params: seed batch_size device threads null mem_mb autocast models.{gan} models.{disc} datasets.{subset}
rule match:
    input:
        code=lambda w: code("rosetta_steps.match", w.gan, w.disc),
        weights=lambda w: weights_files(w.gan)
        + ([] if w.disc == w.gan else weights_files(w.disc, w.gan, w.subset)),
        listing=lambda w: listing_files(w.gan, w.subset, w.shard),
    output:
        directory(SHARD),
    log:
        log("match", "gan", "subset", "disc", "shard"),
    benchmark:
        "benchmarks/match/{gan}/{subset}/{disc}/{shard}.tsv"
    wildcard_constraints:
        shard=SHARD_RANGE,
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=MATCH_MB,
        gpu=GPU,
    params:
        **MATCH_PARAMS,
        **DEVICE_PARAMS,
        range=lambda w: shard_range(w.shard),
        weights=lambda w: weights_args(w.gan, w.disc, gan=w.gan, subset=w.subset),
        source=lambda w: source_args(w.gan, w.subset),
        listing=lambda w, input: option("--listing", input.listing),
        truncation=lambda w: truncation_arg(w.gan),
        seed=setting("seed"),
        batch_size=lambda w: batch_size_of(w.gan),
        nulls=NULLS,
    shell:
        step(
            "match",
            "--gan {wildcards.gan} --disc {wildcards.disc} --out {output:q}"
            " {params.weights} {params.source} {params.listing} --seed {params.seed}"
            " --start {params.range[0]} --count {params.range[1]}"
            " --batch-size {params.batch_size} {params.truncation} --null {params.nulls}"
            + MATCH_ARGS
            + DEVICE_ARGS,
        )


# The fused jobs (common.smk's fused_groups): one per shard of a (generator, subset), writing
# several pairs' shard stores, and its sample store, from one forward pass of G.
for fused, (gan, subset, discs, with_samples, fused_shards) in fused_groups().items():
    inherit_overrides(fused, "match")

    rule:
        name:
            fused
        input:
            code=code("rosetta_steps.match", gan, *discs),
            weights=sorted(
                {f for m in (gan, *discs) for f in weights_files(m, gan, subset)}
            ),
            listing=lambda w, gan=gan, subset=subset: listing_files(
                gan, subset, w.shard
            ),
        output:
            shards=[
                directory(
                    SHARD.format(gan=gan, subset=subset, disc=d, shard="{shard}")
                )
                for d in discs
            ],
            samples=(
                [directory(SAMPLES.format(gan=gan, subset=subset, shard="{shard}"))]
                if with_samples
                else []
            ),
        log:
            f"logs/match--{gan}--{subset}--fused--{{shard}}.log",
        benchmark:
            f"benchmarks/match/{gan}/{subset}/fused/{{shard}}.tsv"
        wildcard_constraints:
            shard="|".join(fused_shards),
        conda:
            ENV
        threads: config["threads"]
        resources:
            mem_mb=MATCH_MB,
            gpu=GPU,
        params:
            **MATCH_PARAMS,
            **DEVICE_PARAMS,
            gan=gan,
            source=source_args(gan, subset),
            listing=lambda w, input: option("--listing", input.listing),
            range=lambda w: shard_range(w.shard),
            weights=weights_args(gan, *discs, gan=gan, subset=subset),
            truncation=truncation_arg(gan),
            pairs=lambda w, output, discs=discs: " ".join(
                f"--disc {d} --out {shlex.quote(o)}"
                for d, o in zip(discs, output.shards)
            ),
            samples=lambda w, output: option("--samples", output.samples),
            seed=setting("seed"),
            batch_size=batch_size_of(gan),
            nulls=NULLS,
        shell:
            step(
                "match",
                "--gan {params.gan} {params.pairs} {params.samples} {params.weights}"
                " {params.source} {params.listing} --seed {params.seed} --start {params.range[0]}"
                " --count {params.range[1]} --batch-size {params.batch_size}"
                " {params.truncation} --null {params.nulls}"
                + MATCH_ARGS
                + DEVICE_ARGS,
            )

    workflow.ruleorder(fused, "match")
    workflow.ruleorder(fused, "sample")


# dvc params: null mem_mb
rule reduce:
    input:
        code=code("rosetta_steps.reduce"),
        shards=lambda w: [SHARD.format(shard=s, **w) for s in shards(w.gan, w.subset)],
    output:
        matches=directory(MATCHES),
        nulls=[
            directory(p)
            for p in expand(NULL_MATCHES, r=range(1, NULLS + 1), allow_missing=True)
        ],
    log:
        log("reduce", "gan", "subset", "disc"),
    conda:
        ENV
    resources:
        mem_mb=MATCH_MB,
        gpu=GPU,
    params:
        images=lambda w: images_of(w.gan, w.subset),
        null_out=lambda w, output: option("--null-out", output.nulls),
        mem_mb=setting("mem_mb"),
        device=MERGE_DEVICE,
    shell:
        step(
            "reduce",
            "{input.shards:q} --images {params.images} --out {output.matches:q}"
            " {params.null_out} --mem-mb {params.mem_mb} --device {params.device}",
        )


# dvc params: k bb_rule null
rule bestbuddies:
    input:
        code=code("rosetta_steps.bestbuddies"),
        matches=MATCHES,
        nulls=lambda w: null_matches(w.gan, w.subset, w.disc),
    output:
        table=BESTBUDDIES,
        nulls=[NULL_BESTBUDDIES] if NULLS else [],
    log:
        log("bestbuddies", "gan", "subset", "disc"),
    conda:
        ENV
    params:
        k=setting("k"),
        rule=setting("bb_rule"),
        null=lambda w, input, output: option("--null", input.nulls)
        + " "
        + option("--null-out", output.nulls),
    shell:
        step(
            "bestbuddies",
            "{input.matches:q} --k {params.k} --rule {params.rule}"
            " {params.null} --out {output.table:q}",
        )


# dvc params: k bb_rule bb_fdr dictionaries.{name}
rule rosetta:
    input:
        code=code("rosetta_steps.rosetta"),
        bestbuddies=lambda w: per_pair(BESTBUDDIES, pairs(w.name)[:-1]),
        self_matches=lambda w: per_pair(MATCHES, pairs(w.name)[-1:]),
        self_nulls=lambda w: self_nulls(w.name),
    output:
        CONCEPTS,
    log:
        log("rosetta", "name"),
    wildcard_constraints:
        name=NAME,
    conda:
        ENV
    params:
        **ROSETTA_PARAMS,
    shell:
        step("rosetta", ROSETTA_ARGS)


# dvc params: k bb_rule
rule stability:
    input:
        code=code("rosetta_steps.stability"),
        shards=lambda w: [SHARD.format(shard=s, **w) for s in shards(w.gan, w.subset)],
    output:
        STABILITY,
    log:
        log("stability", "gan", "subset", "disc"),
    conda:
        ENV
    resources:
        mem_mb=8000,
        gpu=GPU,
    params:
        k=setting("k"),
        rule=setting("bb_rule"),
        device=MERGE_DEVICE,
    shell:
        step(
            "stability",
            "{input.shards:q} --k {params.k} --rule {params.rule} --out {output:q}"
            " --device {params.device}",
        )


# dvc params: seed batch_size device threads dissect
rule dissect:
    input:
        code=lambda w: code("rosetta_steps.dissect", w.model),
        weights=lambda w: weights_files(w.model),
    output:
        DISSECTION,
    log:
        log("dissect", "model"),
    wildcard_constraints:
        model=NAME,
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        weights=lambda w: weights_args(w.model),
        images=setting("dissect", "images"),
        quantile=setting("dissect", "quantile"),
        seed=setting("seed"),
        batch_size=setting("batch_size"),
    shell:
        step(
            "dissect",
            "--model {wildcards.model} {params.weights} --images {params.images}"
            " --quantile {params.quantile} --seed {params.seed} --batch-size {params.batch_size}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )


# dvc params: seed batch_size device threads dissect
rule dissect_faces:
    input:
        code=lambda w: code("rosetta_steps.dissect", w.model, w.gan, LANDMARKS),
        weights=lambda w: sum(
            (weights_files(m) for m in dict.fromkeys([w.model, w.gan, LANDMARKS])), []
        ),
    output:
        FACE_DISSECTION,
    log:
        log("dissect_faces", "gan", "model"),
    wildcard_constraints:
        gan=NAME,
        model=NAME,
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        weights=lambda w: weights_args(w.model, w.gan, LANDMARKS),
        images=setting("dissect", "images"),
        quantile=setting("dissect", "quantile"),
        seed=setting("seed"),
        batch_size=setting("batch_size"),
    shell:
        step(
            "dissect",
            "--labels faces --generator {wildcards.gan} --model {wildcards.model}"
            " {params.weights} --images {params.images} --quantile {params.quantile}"
            " --seed {params.seed} --batch-size {params.batch_size}"
            + DEVICE_ARGS
            + " --out {output:q}",
        )


# dvc params: seed device threads dictionaries.{name}
rule parts_sheet:
    input:
        code=lambda w: code(
            "rosetta_steps.dissect", anchor_of(dictionary(w.name)), LANDMARKS
        ),
        weights=lambda w: sum(
            (weights_files(m) for m in [anchor_of(dictionary(w.name)), LANDMARKS]), []
        ),
    output:
        PARTS_SHEET,
    log:
        log("parts_sheet", "name"),
    wildcard_constraints:
        name=NAME,
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        **DEVICE_PARAMS,
        gan=lambda w: anchor_of(dictionary(w.name)),
        weights=lambda w: weights_args(anchor_of(dictionary(w.name)), LANDMARKS),
        seed=setting("seed"),
    shell:
        step(
            "dissect",
            "--labels faces --generator {params.gan}"
            " {params.weights} --images 6 --seed {params.seed}"
            + DEVICE_ARGS
            + " --sheet {output:q}",
        )


# dvc params: k bb_rule null bb_fdr dissect controls dictionaries.{name}
rule discovery:
    input:
        **CONTROL_INPUTS,
        code=code("rosetta_steps.discovery"),
        bestbuddies=lambda w: per_pair(BESTBUDDIES, pairs(w.name)[:-1]),
        nulls=lambda w: per_pair(NULL_BESTBUDDIES, pairs(w.name)[:-1]),
        stability=lambda w: stability_of(w.name),
        dissections=lambda w: dissections_of(w.name),
        concepts=CONCEPTS,
        decoys=lambda w: [
            DECOYS.format(name=w.name, seed=s)
            for s in range(1, controls_of(w.name)["twins"] + 1)
        ],
    output:
        metrics=report(
            DISCOVERY,
            caption="../report/discovery.rst",
            category="Dictionaries",
            subcategory="{name}",
            labels={"dictionary": "{name}", "result": "discovery metric (JSON)"},
        ),
        plot=DISCOVERY_PLOT,
    log:
        log("discovery", "name"),
    conda:
        ENV
    params:
        stability=lambda w, input: option("--stability", input.stability),
        dissections=lambda w, input: option("--dissections", input.dissections),
        controls=lambda w, input: control_options(w, input)
        + " "
        + option("--decoys", input.decoys),
    shell:
        step(
            "discovery",
            "--bestbuddies {input.bestbuddies:q} --null-bestbuddies {input.nulls:q}"
            " {params.stability} {params.dissections} --concepts {input.concepts:q}"
            " {params.controls}"
            " --out {output.metrics:q} --plot {output.plot:q}",
        )
