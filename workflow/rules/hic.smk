# Hi-C contact graph (per contig: CSR + edge features + insulation/TAD boundaries) and the
# genome-wide trans-chromosomal links read by level 5. Only references with a `hic` key.


ruleorder: hic_trans > hic_graph


rule hic_graph:
    input:
        unpack(hic_inputs),
    output:
        directory(L.path("{reference}", "hic", "{contig}.zarr")),
    log:
        L.path("{reference}", "logs", "hic", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "hic", "{contig}.tsv")
    wildcard_constraints:
        contig="(?!trans$)[^/]+",
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=L.level("hic"),
        ref=hic_ref_params,
    script:
        "../scripts/hic_graph.py"


rule hic_trans:
    input:
        unpack(hic_inputs),
    output:
        directory(L.path("{reference}", "hic", "trans.zarr")),
    log:
        L.path("{reference}", "logs", "hic", "trans.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "hic", "trans.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=4000,
    params:
        cfg=L.level("hic"),
        ref=hic_ref_params,
        contigs=lambda w: L.contigs(w.reference),
    script:
        "../scripts/hic_trans.py"


TARGETS["hic"] = [
    p
    for r in L.references
    if L.ref(r).get("hic")
    for p in L.per_contig(r, "hic/{contig}.zarr") + [L.path(r, "hic", "trans.zarr")]
]


rule hic:
    input:
        TARGETS["hic"],
