# Rosetta-guided inversion (Sec. 4.1): the paper's Table 1 on held-out real images of the shapes
# world, for params.yaml's `inversion.dictionary`: PSNR, SSIM (and LPIPS when AlexNet's weights
# are cached) of reconstruction alone against reconstruction plus Rosetta guidance from each D
# and from all, with a sheet to look at.

INVERTED = config["inversion"]["dictionary"]

rule inversion_table:
    input:
        code=code("rosetta_steps.invert", *models_of(INVERTED)),
        concepts=f"results/rosetta/{INVERTED}.csv",
        bestbuddies=[bestbuddies_path(*p) for p in pairs(INVERTED)[:-1]],
        matches=[matches_path(*p) for p in pairs(INVERTED)[:-1]],
        weights=sum((weights_files(p[2]) for p in pairs(INVERTED)), []),
    output:
        metrics="results/metrics/inversion.json",
        sheet=f"results/inversion/{INVERTED}/table1.png",
    params:
        gan=dictionary(INVERTED)["gan"],
        discs=" ".join(dictionary(INVERTED)["discs"]),
        weights=weights_args(*(p[2] for p in pairs(INVERTED))),
        settings=config["inversion"],
        seed=config["seed"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/inversion_table.log",
    benchmark:
        "benchmarks/inversion_table.tsv"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.invert --gan {params.gan} --discs {params.discs}"
        " {params.weights} --concepts {input.concepts} --bestbuddies {input.bestbuddies}"
        " --matches {input.matches} --images {params.settings[images]} --seed {params.seed}"
        " --steps {params.settings[steps]} --lr {params.settings[lr]}"
        " --alpha {params.settings[alpha]} --reg {params.settings[reg]}"
        " --rec {params.settings[rec]} --beta {params.settings[beta]}"
        " --device {params.device} --threads {params.threads}"
        " --metrics {output.metrics} --sheet {output.sheet}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


# Edits (Sec. 4.2) of generated images of params.yaml's `edits.dictionary`: one before/after
# sheet and one measurement file per edit.

EDITED = config["edits"]["dictionary"]
EDITS = ["shift", "zoom", "copy_paste", "remove", "add"]


rule edit:
    input:
        code=code("rosetta_steps.edit", dictionary(EDITED)["gan"]),
        concepts=f"results/rosetta/{EDITED}.csv",
        matches=matches_path(*pairs(EDITED)[-1]),
        weights=weights_files(dictionary(EDITED)["gan"]),
    output:
        sheet=f"results/edits/{EDITED}/{{edit}}.png",
        metrics=f"results/metrics/edits/{EDITED}/{{edit}}.json",
    wildcard_constraints:
        edit="|".join(EDITS),
    params:
        gan=dictionary(EDITED)["gan"],
        subset=subset_of(dictionary(EDITED)),
        weights=weights_arg(dictionary(EDITED)["gan"], "--weights"),
        truncation=truncation_arg(dictionary(EDITED)["gan"]),
        settings=config["edits"],
        concept=("" if config["edits"]["concept"] is None
                 else f"--concept {config['edits']['concept']}"),
        seed=config["seed"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/edit--{edit}.log",
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.edit --gan {params.gan} --subset {params.subset}"
        " {params.weights} {params.truncation} --concepts {input.concepts}"
        " --matches {input.matches} --edit {wildcards.edit} --images {params.settings[images]} --seed {params.seed}"
        " --steps {params.settings[steps]} --lr {params.settings[lr]}"
        " --alpha {params.settings[alpha]} --shift {params.settings[shift]}"
        " --zoom {params.settings[zoom]} --scale {params.settings[scale]} {params.concept}"
        " --device {params.device} --threads {params.threads}"
        " --metrics {output.metrics} --sheet {output.sheet}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


# Single Rosetta neurons visualised by inversion from several random starts (Fig. 1), against
# the first D of the dictionary, and sketches and cartoons turned into the generator's images
# through the Rosetta maps of all its Ds (Fig. 5).

OOD_TARGETS = sorted(str(p) for p in Path("data/ood").glob("*.png"))


rule neurons:
    input:
        code=code("rosetta_steps.neurons", *models_of(INVERTED)),
        concepts=f"results/rosetta/{INVERTED}.csv",
        bestbuddies=bestbuddies_path(*pairs(INVERTED)[0]),
        matches=matches_path(*pairs(INVERTED)[0]),
        weights=sum((weights_files(p[2]) for p in pairs(INVERTED)[:1] + pairs(INVERTED)[-1:]),
                    []),
    output:
        sheet=f"results/inversion/{INVERTED}/neurons.png",
    params:
        gan=dictionary(INVERTED)["gan"],
        disc=pairs(INVERTED)[0][2],
        weights=weights_args(pairs(INVERTED)[0][2], pairs(INVERTED)[-1][2]),
        settings=config["inversion"],
        seed=config["seed"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/neurons.log",
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.neurons --gan {params.gan} --disc {params.disc}"
        " {params.weights} --concepts {input.concepts} --bestbuddies {input.bestbuddies}"
        " --matches {input.matches} --starts {params.settings[starts]} --seed {params.seed}"
        " --steps {params.settings[steps]} --lr {params.settings[lr]}"
        " --alpha {params.settings[alpha]} --reg {params.settings[reg]}"
        " --device {params.device} --threads {params.threads} --sheet {output.sheet}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule ood:
    input:
        code=code("rosetta_steps.ood", *models_of(INVERTED)),
        concepts=f"results/rosetta/{INVERTED}.csv",
        bestbuddies=[bestbuddies_path(*p) for p in pairs(INVERTED)[:-1]],
        matches=[matches_path(*p) for p in pairs(INVERTED)[:-1]],
        weights=sum((weights_files(p[2]) for p in pairs(INVERTED)), []),
        targets=OOD_TARGETS,
    output:
        sheet=f"results/inversion/{INVERTED}/ood.png",
    params:
        gan=dictionary(INVERTED)["gan"],
        discs=" ".join(dictionary(INVERTED)["discs"]),
        weights=weights_args(*(p[2] for p in pairs(INVERTED))),
        settings=config["inversion"],
        seed=config["seed"],
        device=config["device"],
        threads=config["threads"],
    conda:
        ENV
    log:
        "logs/ood.log",
    threads: config["threads"]
    resources:
        mem_mb=2000,
        gpu=0 if config["device"] == "cpu" else 1,
    shell:
        "python -m rosetta_steps.ood --gan {params.gan} --discs {params.discs}"
        " {params.weights} --concepts {input.concepts} --bestbuddies {input.bestbuddies}"
        " --matches {input.matches} --targets {input.targets} --seed {params.seed}"
        " --steps {params.settings[steps]} --lr {params.settings[lr]}"
        " --alpha {params.settings[alpha]} --reg {params.settings[reg]}"
        " --device {params.device} --threads {params.threads} --sheet {output.sheet}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
