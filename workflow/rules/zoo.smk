# The shapes zoo: each model trained by `python -m rosetta_steps.train` from params.yaml's zoo
# settings; the generator is judged by the supervised model, so it trains after it.


rule train:
    input:
        code=code("rosetta_steps.train"),
        judge=lambda w: zoo_weights("shapes-cnn-sup") if w.model == "shapes-gan" else [],
    output:
        weights=f"{ZOO_DIR}/{{model}}.safetensors",
        metrics=f"{ZOO_DIR}/{{model}}.json",
    params:
        settings=lambda w: config["zoo"]["models"][w.model],
        seed=config["zoo"]["seed"],
        judge=lambda w, input: f"--judge {input.judge}" if input.judge else "",
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/train--{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=3000,
    shell:
        "python -m rosetta_steps.train {wildcards.model} --out {output.weights}"
        " --metrics {output.metrics} --seed {params.seed} --steps {params.settings[steps]}"
        " --batch-size {params.settings[batch_size]} --lr {params.settings[lr]}"
        " --pool {params.settings[pool]} --eval-images {params.settings[eval_images]}"
        " {params.judge} --threads {params.threads}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule zoo_samples:
    input:
        code=code("rosetta_steps.samplesheet"),
        weights=zoo_weights("shapes-gan"),
    output:
        f"{ZOO_DIR}/samples.png",
    params:
        seed=config["seed"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/zoo_samples.log",
    threads: config["threads"]
    shell:
        "python -m rosetta_steps.samplesheet --gan shapes-gan --weights {input.weights}"
        " --seed {params.seed} --threads {params.threads} --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
