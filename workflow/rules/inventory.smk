# What mining a dictionary made, checked and counted (rosetta_steps.inventory): its job reads
# every mining output of the dictionary, so its DVC stage, inventory--NAME, is the one name
# `dvc pull --with-deps` needs to fetch that mining (docs/guides/sharing.md).


# dvc params:
rule inventory:
    input:
        code=code("rosetta_steps.inventory"),
        matches=lambda w: per_pair(MATCHES, mined_pairs(w.name)),
        nulls=lambda w: [n for pair in mined_pairs(w.name) for n in null_matches(*pair)],
        samples=lambda w: samples_of(*pairs(w.name)[-1][:2]),
        dissections=lambda w: dissections_of(w.name),
    output:
        INVENTORY,
    log:
        log("inventory", "name"),
    conda:
        ENV
    params:
        nulls=lambda w, input: option("--nulls", input.nulls),
        dissections=lambda w, input: option("--dissections", input.dissections),
    shell:
        step(
            "inventory",
            "{wildcards.name} --matches {input.matches:q} {params.nulls}"
            " --samples {input.samples:q} {params.dissections} --out {output:q}",
        )
