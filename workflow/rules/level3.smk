# Level 3: exon tokens, attention among the exons of each transcript, gene embeddings; per contig.


rule level3_contig:
    input:
        annotation=L.path("{reference}", "annotation.parquet"),
        level1=L.path("{reference}", "level1", "{contig}.zarr"),
        level2=L.path("{reference}", "level2", "{contig}.zarr"),
    output:
        directory(L.path("{reference}", "level3", "{contig}.zarr")),
    log:
        L.path("{reference}", "logs", "level3", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level3", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=6000,
    params:
        cfg=L.level("level3"),
        annotation=L.level("annotation"),
        device=config["kernels"]["device"],
    script:
        "../scripts/level3.py"


TARGETS["level3"] = [
    p for r in annotated_references() for p in L.per_contig(r, "level3/{contig}.zarr")
]


rule level3:
    input:
        TARGETS["level3"],
