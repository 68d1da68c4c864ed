# Level 1: 512 bp windows of nucleotide attention, one job per contig.


rule level1_contig:
    input:
        unpack(job_inputs("level1_contig")),
    output:
        directory(job_output("level1_contig")),
    log:
        L.path("{reference}", "logs", "level1", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level1", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level1_contig").threads
    resources:
        mem_mb=job_mem_mb("level1_contig"),
    params:
        config=job_params("level1_contig"),
        derived=job_derived("level1_contig"),
    script:
        "../scripts/run_job.py"


rule level1:
    input:
        TARGETS["level1"],
