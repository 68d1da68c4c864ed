# Level 0: FASTA -> tokens.zarr (one job per reference; streaming, I/O bound).


rule tokenize_reference:
    input:
        unpack(job_inputs("tokenize_reference")),
    output:
        directory(job_output("tokenize_reference")),
    log:
        L.path("{reference}", "logs", "tokenize.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "tokenize.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("tokenize_reference").threads
    resources:
        mem_mb=job_mem_mb("tokenize_reference"),
    params:
        config=job_params("tokenize_reference"),
        derived=job_derived("tokenize_reference"),
    script:
        "../scripts/run_job.py"


rule tokenize:
    input:
        TARGETS["tokenize"],
