# Level 1: 512 bp windows of nucleotide attention, one job per contig.


rule level1_contig:
    input:
        tokens=L.path("{reference}", "tokens.zarr"),
        annotation=level1_annotation,
    output:
        directory(L.path("{reference}", "level1", "{contig}.zarr")),
    log:
        L.path("{reference}", "logs", "level1", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level1", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=4000,
    params:
        cfg=L.level("level1"),
        device=config["kernels"]["device"],
    script:
        "../scripts/level1.py"


TARGETS["level1"] = [
    p for r in L.references for p in L.per_contig(r, "level1/{contig}.zarr")
]


rule level1:
    input:
        TARGETS["level1"],
