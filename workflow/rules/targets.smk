# Per-level targets (`snakemake level1`) and `all`. Each rule file registers its outputs in TARGETS.


rule all:
    default_target: True
    input:
        [path for paths in TARGETS.values() for path in paths],
