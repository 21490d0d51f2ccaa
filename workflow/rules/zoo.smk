# The shapes zoo: each model trained by `python -m rosetta_steps.train` from params.yaml's zoo
# settings; the generator is judged by the supervised model, so it trains after it.


# dvc params: zoo.seed zoo.models.{model} threads
rule train:
    input:
        code=code("rosetta_steps.train"),
        judge=lambda w: zoo_weights("shapes-cnn-sup") if w.model == "shapes-gan" else [],
    output:
        weights=ZOO_WEIGHTS,
        metrics=ZOO_METRICS,
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
