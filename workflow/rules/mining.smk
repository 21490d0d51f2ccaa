# Mining (paper, Sec. 3): sample and match shard by shard, reduce each (G, D) pair to its match
# store, best buddies per pair, then the Rosetta units and concepts of each dictionary.

SHARD = r"\d{6}-\d{6}"


rule sample:
    input:
        code=lambda w: code("rosetta_steps.sample", w.gan),
        weights=lambda w: weights_files(w.gan),
    output:
        directory("results/samples/{gan}/{subset}/{shard}.zarr"),
    wildcard_constraints:
        shard=SHARD,
    params:
        range=lambda w: shard_range(w.shard),
        weights=lambda w: weights_arg(w.gan, "--weights"),
        truncation=lambda w: truncation_arg(w.gan),
        seed=config["seed"],
        batch_size=config["batch_size"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/sample--{gan}--{subset}--{shard}.log",
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.sample --gan {wildcards.gan} {params.weights}"
        " --subset {wildcards.subset} --seed {params.seed} --start {params.range[0]}"
        " --count {params.range[1]} --batch-size {params.batch_size} {params.truncation}"
        " --device {params.device} --threads {params.threads} --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule match:
    input:
        code=lambda w: code("rosetta_steps.match", w.gan, w.disc),
        weights=lambda w: weights_files(w.gan) + ([] if w.disc == w.gan else weights_files(w.disc)),
    output:
        directory("results/match/{gan}/{subset}/{disc}/shards/{shard}.zarr"),
    wildcard_constraints:
        shard=SHARD,
    params:
        range=lambda w: shard_range(w.shard),
        gan_weights=lambda w: weights_arg(w.gan, "--gan-weights"),
        disc=lambda w: "" if w.disc == w.gan else (
            f"--disc {w.disc} {weights_arg(w.disc, '--disc-weights')}".strip()),
        truncation=lambda w: truncation_arg(w.gan),
        seed=config["seed"],
        batch_size=config["batch_size"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/match--{gan}--{subset}--{disc}--{shard}.log",
    benchmark:
        "benchmarks/match/{gan}/{subset}/{disc}/{shard}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.match --gan {wildcards.gan} {params.gan_weights}"
        " --subset {wildcards.subset} {params.disc} --seed {params.seed}"
        " --start {params.range[0]} --count {params.range[1]} --batch-size {params.batch_size}"
        " {params.truncation} --device {params.device} --threads {params.threads}"
        " --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule reduce:
    input:
        code=code("rosetta_steps.reduce"),
        shards=lambda w: [shard_path(w.gan, w.subset, w.disc, s) for s in shards(w.gan, w.subset)],
    output:
        directory("results/match/{gan}/{subset}/{disc}/matches.zarr"),
    conda:
        ENV
    log:
        "logs/reduce--{gan}--{subset}--{disc}.log",
    resources:
        mem_mb=8000,
    shell:
        "python -m rosetta_steps.reduce {input.shards} --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule bestbuddies:
    input:
        code=code("rosetta_steps.bestbuddies"),
        matches="results/match/{gan}/{subset}/{disc}/matches.zarr",
    output:
        "results/bestbuddies/{gan}/{subset}/{disc}.csv",
    params:
        k=config["k"],
        rule=config["bb_rule"],
    conda:
        ENV
    log:
        "logs/bestbuddies--{gan}--{subset}--{disc}.log",
    shell:
        "python -m rosetta_steps.bestbuddies {input.matches} --k {params.k}"
        " --rule {params.rule} --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule rosetta:
    input:
        code=code("rosetta_steps.rosetta"),
        bestbuddies=lambda w: [bestbuddies_path(*p) for p in pairs(w.name)[:-1]],
        self_matches=lambda w: matches_path(*pairs(w.name)[-1]),
    output:
        "results/rosetta/{name}.csv",
    params:
        k=config["k"],
        rule=config["bb_rule"],
    conda:
        ENV
    log:
        "logs/rosetta--{name}.log",
    shell:
        "python -m rosetta_steps.rosetta --bestbuddies {input.bestbuddies}"
        " --self-matches {input.self_matches} --k {params.k} --rule {params.rule}"
        " --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
