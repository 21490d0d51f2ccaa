# The pages a person opens: the Rosetta dictionary of each dictionary and the best-buddy pairs
# of each (G, D) pair. They reuse the sampled images and recompute only the maps they show.


rule dictionary_page:
    input:
        code=lambda w: code("rosetta_steps.dictionary", *models_of(w.name)),
        templates=TEMPLATES,
        concepts="results/rosetta/{name}.csv",
        samples=lambda w: samples_of(*pairs(w.name)[0][:2]),
        self_matches=lambda w: matches_path(*pairs(w.name)[-1]),
        matches=lambda w: [matches_path(*p) for p in pairs(w.name)[:-1]],
        bestbuddies=lambda w: [bestbuddies_path(*p) for p in pairs(w.name)[:-1]],
        weights=lambda w: sum((weights_files(p[2]) for p in pairs(w.name)), []),
    output:
        "results/dictionary/{name}.html",
    params:
        weights=lambda w: weights_args(*(p[2] for p in pairs(w.name))),
        k=config["k"],
        examples=config["examples"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/dictionary_page--{name}.log",
    threads: config["threads"]
    shell:
        "python -m rosetta_steps.dictionary --name {wildcards.name}"
        " --concepts {input.concepts} --samples {input.samples}"
        " --self-matches {input.self_matches} --matches {input.matches}"
        " --bestbuddies {input.bestbuddies} {params.weights} --k {params.k}"
        " --examples {params.examples} --device {params.device} --threads {params.threads}"
        " --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule pairwise_page:
    input:
        code=lambda w: code("rosetta_steps.pairwise", w.gan, w.disc),
        templates=TEMPLATES,
        matches="results/match/{gan}/{subset}/{disc}/matches.zarr",
        bestbuddies="results/bestbuddies/{gan}/{subset}/{disc}.csv",
        samples=lambda w: samples_of(w.gan, w.subset),
        weights=lambda w: weights_files(w.gan) + weights_files(w.disc),
    output:
        "results/pairwise/{gan}/{subset}/{disc}.html",
    params:
        weights=lambda w: weights_args(w.gan, w.disc),
        examples=config["examples"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/pairwise_page--{gan}--{subset}--{disc}.log",
    threads: config["threads"]
    shell:
        "python -m rosetta_steps.pairwise --matches {input.matches}"
        " --bestbuddies {input.bestbuddies} --samples {input.samples} {params.weights}"
        " --examples {params.examples} --device {params.device} --threads {params.threads}"
        " --out {output}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
