# Level 3: exon tokens, attention among the exons of each transcript, gene embeddings; per contig.


rule level3_contig:
    input:
        unpack(job_inputs("level3_contig")),
    output:
        directory(job_output("level3_contig")),
    log:
        L.path("{reference}", "logs", "level3", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level3", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level3_contig").threads
    resources:
        mem_mb=job_mem_mb("level3_contig"),
    params:
        config=job_params("level3_contig"),
        derived=job_derived("level3_contig"),
    script:
        "../scripts/run_job.py"


rule level3:
    input:
        TARGETS["level3"],
