# Level 5: genome-wide block-sparse attention over all bins, one job per reference.


rule level5_genome:
    input:
        unpack(job_inputs("level5_genome")),
    output:
        directory(job_output("level5_genome")),
    log:
        L.path("{reference}", "logs", "level5.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level5.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level5_genome").threads
    resources:
        mem_mb=job_mem_mb("level5_genome"),
    params:
        config=job_params("level5_genome"),
        derived=job_derived("level5_genome"),
    script:
        "../scripts/run_job.py"


rule level5:
    input:
        TARGETS["level5"],
