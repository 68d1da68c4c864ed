# Level 4: graph attention over the Hi-C contact graph, one job per contig.


rule level4_contig:
    input:
        hic=L.path("{reference}", "hic", "{contig}.zarr"),
        level1=L.path("{reference}", "level1", "{contig}.zarr"),
        level3=level4_level3,
        elements=lambda w: L.ref(w.reference).get("regulatory_elements") or [],
    output:
        directory(L.path("{reference}", "level4", "{contig}.zarr")),
    log:
        L.path("{reference}", "logs", "level4", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level4", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: 2
    resources:
        mem_mb=8000,
    params:
        cfg=L.level("level4"),
        kernels=config["kernels"],
        raw_inputs=lambda w: [
            L.ref(w.reference).get("hic"),
            L.ref(w.reference).get("regulatory_elements"),
        ],
        contig_policy=lambda w: {
            "contig_aliases": L.ref(w.reference).get("contig_aliases", {}),
            "chr_prefix": L.ref(w.reference).get("chr_prefix", "auto"),
        },
    script:
        "../scripts/level4.py"


TARGETS["level4"] = [
    p
    for r in L.references
    if L.ref(r).get("hic")
    for p in L.per_contig(r, "level4/{contig}.zarr")
]


rule level4:
    input:
        TARGETS["level4"],
