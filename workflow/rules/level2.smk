# Level 2: codon attention in three reading frames per coding exon, one job per contig.
# Only references with an annotation have levels 2-3.


rule level2_contig:
    input:
        annotation=L.path("{reference}", "annotation.parquet"),
        level1=L.path("{reference}", "level1", "{contig}.zarr"),
    output:
        directory(L.path("{reference}", "level2", "{contig}.zarr")),
    log:
        L.path("{reference}", "logs", "level2", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level2", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=6000,
    params:
        cfg=L.level("level2"),
        annotation=L.level("annotation"),
        device=config["kernels"]["device"],
    script:
        "../scripts/level2.py"


TARGETS["level2"] = [
    p for r in annotated_references() for p in L.per_contig(r, "level2/{contig}.zarr")
]


rule level2:
    input:
        TARGETS["level2"],
