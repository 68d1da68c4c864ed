# Annotation table: GTF/GFF3 -> results/{reference}/annotation.parquet (0-based half-open, contigs
# mapped onto the reference FASTA's names). One job per reference that has an `annotation`.


rule annotation:
    input:
        unpack(job_inputs("annotation")),
    output:
        job_output("annotation"),
    log:
        L.path("{reference}", "logs", "annotation.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "annotation.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("annotation").threads
    resources:
        mem_mb=job_mem_mb("annotation"),
    params:
        config=job_params("annotation"),
        derived=job_derived("annotation"),
    script:
        "../scripts/run_job.py"


rule annotate:
    input:
        TARGETS["annotate"],
