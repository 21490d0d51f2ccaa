# Rosetta-guided inversion (Sec. 4.1): the paper's Table 1 on held-out real images of the shapes
# world, for params.yaml's `inversion.dictionary`: PSNR and SSIM of reconstruction alone against
# reconstruction plus Rosetta guidance from each D and from all, with a sheet to look at.

INVERTED = config["inversion"]["dictionary"]

rule inversion_table:
    input:
        code=code("rosetta_steps.invert"),
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
        " --beta {params.settings[beta]} --device {params.device} --threads {params.threads}"
        " --metrics {output.metrics} --sheet {output.sheet}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
