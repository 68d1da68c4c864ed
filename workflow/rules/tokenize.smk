# Level 0: FASTA -> tokens.zarr (one job per reference; streaming, I/O bound).


rule tokenize_reference:
    input:
        fasta=lambda w: L.ref(w.reference)["fasta"],
    output:
        directory(L.path("{reference}", "tokens.zarr")),
    log:
        L.path("{reference}", "logs", "tokenize.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "tokenize.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=2000,
    params:
        reference=lambda w: L.ref(w.reference),
        cfg=L.level("tokenize"),
    script:
        "../scripts/tokenize.py"


TARGETS["tokenize"] = [L.path(r, "tokens.zarr") for r in L.references]


rule tokenize:
    input:
        TARGETS["tokenize"],
