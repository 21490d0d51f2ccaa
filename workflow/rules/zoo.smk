# The shapes zoo: shipped in data/zoo/shapes/ and checked against its manifest before any job
# reads it (rule zoo), or trained here by `python -m rosetta_steps.train` from params.yaml's zoo
# settings (rule train; `make zoo` trains every model and writes their manifest). The generator
# is judged by the supervised model, so it trains after it.


# dvc params: zoo.source
rule zoo:
    input:
        code=code("rosetta_steps.zoo"),
        weights=SHIPPED_WEIGHTS,
        manifest=SHIPPED_MANIFEST,
    output:
        weights=ZOO_WEIGHTS,
        metrics=ZOO_METRICS,
    log:
        log("zoo", "model"),
    conda:
        ENV
    shell:
        step(
            "zoo",
            "check {wildcards.model} --weights {input.weights:q}"
            " --manifest {input.manifest:q} --out {output.weights:q}"
            " --metrics {output.metrics:q}",
        )


# dvc params: zoo.seed zoo.models.{model} threads
rule train:
    input:
        code=code("rosetta_steps.train"),
        judge=lambda w: (
            [TRAINED_WEIGHTS.format(model="shapes-cnn-sup")]
            if w.model == "shapes-gan"
            else []
        ),
    output:
        weights=TRAINED_WEIGHTS,
        metrics=TRAINED_METRICS,
    log:
        log("train", "model"),
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        mem_mb=3000,
    params:
        settings=lambda w: settings("zoo", "models", w.model),
        seed=setting("zoo", "seed"),
        judge=lambda w, input: option("--judge", input.judge),
        threads=setting("threads"),
    shell:
        step(
            "train",
            "{wildcards.model} --out {output.weights:q} --metrics {output.metrics:q}"
            " --seed {params.seed} --steps {params.settings[steps]}"
            " --batch-size {params.settings[batch_size]} --lr {params.settings[lr]}"
            " --pool {params.settings[pool]} --eval-images {params.settings[eval_images]}"
            " {params.judge} --threads {params.threads}",
        )


# dvc params: zoo.models
rule zoo_manifest:
    input:
        code=code("rosetta_steps.zoo"),
        weights=expand(TRAINED_WEIGHTS, model=config["zoo"]["models"]),
        metrics=expand(TRAINED_METRICS, model=config["zoo"]["models"]),
    output:
        TRAINED_MANIFEST,
    log:
        log("zoo_manifest"),
    conda:
        ENV
    params:
        trained=lambda w, input: " ".join(
            shlex.quote(f"{m}={path}")
            for m, path in zip(config["zoo"]["models"], input.weights)
        ),
    shell:
        step("zoo", "manifest {params.trained} --out {output:q}")


# dvc params: seed threads
rule samplesheet:
    input:
        code=code("rosetta_steps.samplesheet"),
        weights=zoo_weights("shapes-gan"),
    output:
        ZOO_SHEET,
    log:
        log("samplesheet"),
    conda:
        ENV
    threads: config["threads"]
    params:
        weights=weights_args("shapes-gan"),
        seed=setting("seed"),
        threads=setting("threads"),
    shell:
        step(
            "samplesheet",
            "--gan shapes-gan {params.weights} --seed {params.seed}"
            " --threads {params.threads} --out {output:q}",
        )
