# Level 1: 512 bp windows of nucleotide attention, one job per contig.


def level1_annotation(wildcards):
    if L.ref(wildcards.reference).get("annotation"):
        return L.path(wildcards.reference, "annotation.parquet")
    return []


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
    params:
        cfg=L.level("level1"),
        device=config["kernels"]["device"],
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    script:
        "../scripts/level1.py"


TARGETS["level1"] = [p for r in L.references for p in L.per_contig(r, "level1/{contig}.zarr")]


rule level1:
    input:
        TARGETS["level1"],
