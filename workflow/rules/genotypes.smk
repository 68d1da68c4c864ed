# Cohort genotypes: VCF/BCF -> results/{cohort}/genotypes.zarr (VCF Zarr names), then LD blocks.
# With cohorts.<name>.split_bp the VCF is converted piece by piece (genotypes_part, one job per
# region) and genotypes_cohort joins the pieces; otherwise genotypes_cohort converts it in one job.


rule genotypes_part:
    input:
        unpack(genotypes_inputs),
    output:
        directory(L.path("{cohort}", "genotypes_parts", "{part}.zarr")),
    log:
        L.path("{cohort}", "logs", "genotypes_parts", "{part}.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "genotypes_parts", "{part}.tsv")
    wildcard_constraints:
        part=r"p\d{5}",
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=lambda wildcards: config["cohorts"][wildcards.cohort],
        region=genotype_part_region,
    script:
        "../scripts/genotypes_part.py"


rule genotypes_cohort:
    input:
        unpack(genotypes_cohort_inputs),
    output:
        directory(L.path("{cohort}", "genotypes.zarr")),
    log:
        L.path("{cohort}", "logs", "genotypes.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "genotypes.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=lambda wildcards: config["cohorts"][wildcards.cohort],
    script:
        "../scripts/genotypes.py"


rule ld_blocks:
    input:
        genotypes=L.path("{cohort}", "genotypes.zarr"),
    output:
        directory(L.path("{cohort}", "ld_blocks.zarr")),
    log:
        L.path("{cohort}", "logs", "ld_blocks.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "ld_blocks.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=L.level("level6")["ld_blocks"],
    script:
        "../scripts/ld_blocks.py"


TARGETS["genotypes"] = [
    L.path(c, name) for c in L.cohorts for name in ("genotypes.zarr", "ld_blocks.zarr")
]


rule genotypes:
    input:
        TARGETS["genotypes"],
