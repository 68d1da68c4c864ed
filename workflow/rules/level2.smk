# Level 2: codon attention in three reading frames per coding exon, one job per contig.
# Only references with an annotation have levels 2-3.


rule level2_contig:
    input:
        unpack(job_inputs("level2_contig")),
    output:
        directory(job_output("level2_contig")),
    log:
        L.path("{reference}", "logs", "level2", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level2", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level2_contig").threads
    resources:
        mem_mb=job_mem_mb("level2_contig"),
    params:
        config=job_params("level2_contig"),
        derived=job_derived("level2_contig"),
    script:
        "../scripts/run_job.py"


rule level2:
    input:
        TARGETS["level2"],
