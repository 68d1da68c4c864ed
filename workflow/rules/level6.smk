# Level 6: local-global attention per individual, one job per shard of samples, then a gather.
# The shard count comes from the sample sheet / VCF header at DAG-build time (no checkpoint).


rule level6_shard:
    input:
        unpack(job_inputs("level6_shard")),
    output:
        directory(job_output("level6_shard")),
    log:
        L.path("{cohort}", "logs", "level6", "{shard}.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "level6", "{shard}.tsv")
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level6_shard").threads
    resources:
        mem_mb=job_mem_mb("level6_shard"),
    params:
        config=job_params("level6_shard"),
        derived=job_derived("level6_shard"),
    script:
        "../scripts/run_job.py"


rule level6_gather:
    input:
        unpack(job_inputs("level6_gather")),
    output:
        directory(job_output("level6_gather")),
    log:
        L.path("{cohort}", "logs", "level6_gather.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "level6_gather.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("level6_gather").threads
    resources:
        mem_mb=job_mem_mb("level6_gather"),
    params:
        config=job_params("level6_gather"),
        derived=job_derived("level6_gather"),
    script:
        "../scripts/run_job.py"


rule level6:
    input:
        TARGETS["level6"],
