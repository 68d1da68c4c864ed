# Level 5: genome-wide block-sparse attention over all bins, one job per reference.


rule level5_genome:
    input:
        level4=lambda w: L.per_contig(w.reference, "level4/{contig}.zarr"),
        trans=L.path("{reference}", "hic", "trans.zarr"),
    output:
        directory(L.path("{reference}", "level5.zarr")),
    log:
        L.path("{reference}", "logs", "level5.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level5.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=16000,
    params:
        cfg=L.level("level5"),
        kernels=config["kernels"],
        layout_cache=lambda w: L.path(w.reference, "level5_layout.npz"),
        raw_inputs=lambda w: [
            L.ref(w.reference).get("hic"),
            L.ref(w.reference).get("hic_breakpoints"),
        ],
    script:
        "../scripts/level5.py"


TARGETS["level5"] = [
    L.path(r, "level5.zarr") for r in L.references if L.ref(r).get("hic")
]


rule level5:
    input:
        TARGETS["level5"],
