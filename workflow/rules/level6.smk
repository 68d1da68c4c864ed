# Level 6: local-global attention per individual, one job per shard of samples, then a gather.
# The shard count comes from the sample sheet / VCF header at DAG-build time (no checkpoint).


rule level6_shard:
    input:
        genotypes=L.path("{cohort}", "genotypes.zarr"),
        ld_blocks=L.path("{cohort}", "ld_blocks.zarr"),
        level5=level6_context,
    output:
        directory(L.path("{cohort}", "level6_shards", "{shard}.zarr")),
    log:
        L.path("{cohort}", "logs", "level6", "{shard}.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "level6", "{shard}.tsv")
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=8000,
    params:
        cfg=L.level("level6"),
        device=config["kernels"]["device"],
    script:
        "../scripts/level6_shard.py"


rule level6_gather:
    input:
        shards=level6_shards,
        genotypes=L.path("{cohort}", "genotypes.zarr"),
        ld_blocks=L.path("{cohort}", "ld_blocks.zarr"),
    output:
        directory(L.path("{cohort}", "level6.zarr")),
    log:
        L.path("{cohort}", "logs", "level6_gather.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "level6_gather.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=L.level("level6"),
    script:
        "../scripts/level6_gather.py"


TARGETS["level6"] = [L.path(c, "level6.zarr") for c in L.cohorts]


rule level6:
    input:
        TARGETS["level6"],
