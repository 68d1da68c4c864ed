# genoattn workflow: hierarchical attention over a genome at six scales.
# This file includes the rule files and defines `all`; see README.md and config/README.md.


include: "workflow/rules/common.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/annotation.smk"
include: "workflow/rules/level1.smk"
include: "workflow/rules/level2.smk"
include: "workflow/rules/level3.smk"
include: "workflow/rules/hic.smk"
include: "workflow/rules/level4.smk"
include: "workflow/rules/level5.smk"
include: "workflow/rules/genotypes.smk"
include: "workflow/rules/level6.smk"
include: "workflow/rules/impute.smk"
include: "workflow/rules/effects.smk"
# after every level: the plots follow what the levels registered in TARGETS
include: "workflow/rules/report.smk"


# Every level's outputs (genoattn.jobs lists them in TARGETS), not the training stage nor imputation:
# `snakemake train` trains, and a level with `checkpoint: train` pulls its training job in;
# `snakemake impute` fills the cohorts' missing calls. Per-level targets: `snakemake tokenize`,
# `annotate`, `level1` ... `level6`, `hic`, `genotypes`, `train`, `impute`, `plots`.
# This rule lives here, not in an included file: Snakemake takes the default target only from
# the main Snakefile.
rule all:
    default_target: True
    input:
        [
            path
            for name, paths in TARGETS.items()
            if name not in ("train", "impute")
            for path in paths
        ],
