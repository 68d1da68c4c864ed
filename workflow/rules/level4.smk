# Level 4: graph attention over the Hi-C contact graph, one job per contig.


rule level4_contig:
    input:
        unpack(job_inputs("level4_contig")),
    output:
        directory(job_output("level4_contig")),
    log:
        L.path("{reference}", "logs", "level4", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "level4", "{contig}.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("level4_contig").threads
    resources:
        mem_mb=job_mem_mb("level4_contig"),
    params:
        config=job_params("level4_contig"),
        derived=job_derived("level4_contig"),
    script:
        "../scripts/run_job.py"


rule level4:
    input:
        TARGETS["level4"],
