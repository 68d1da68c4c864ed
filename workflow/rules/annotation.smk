# Annotation table: GTF/GFF3 -> results/{reference}/annotation.parquet (0-based half-open, contigs
# mapped onto the reference FASTA's names). One job per reference that has an `annotation`.


rule annotation:
    input:
        annotation=lambda w: L.ref(w.reference)["annotation"],
        fasta=lambda w: L.ref(w.reference)["fasta"],
        index=annotation_fasta_index,
    output:
        L.path("{reference}", "annotation.parquet"),
    log:
        L.path("{reference}", "logs", "annotation.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "annotation.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: 1
    resources:
        mem_mb=annotation_mem_mb,
    params:
        cfg=lambda w: {
            "contig_aliases": L.ref(w.reference).get("contig_aliases", {}),
            "chr_prefix": L.ref(w.reference).get("chr_prefix", "auto"),
        },
    script:
        "../scripts/annotation.py"


TARGETS["annotation"] = [
    L.path(r, "annotation.parquet") for r in L.references if L.ref(r).get("annotation")
]


rule annotate:
    input:
        TARGETS["annotation"],
