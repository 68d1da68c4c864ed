# Cohort genotypes: VCF/BCF -> results/{cohort}/genotypes.zarr (VCF Zarr names), then LD blocks.
# With cohorts.<name>.split_bp the VCF is converted piece by piece (genotypes_part, one job per
# region) and genotypes_cohort joins the pieces (temporary: removed once joined); otherwise
# genotypes_cohort converts it in one job.


rule genotypes_part:
    input:
        unpack(job_inputs("genotypes_part")),
    output:
        temp(directory(job_output("genotypes_part"))),
    log:
        L.path("{cohort}", "logs", "genotypes_parts", "{part}.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "genotypes_parts", "{part}.tsv")
    wildcard_constraints:
        part=r"p\d{5}",
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("genotypes_part").threads
    resources:
        mem_mb=job_mem_mb("genotypes_part"),
    params:
        config=job_params("genotypes_part"),
        derived=job_derived("genotypes_part"),
    script:
        "../scripts/run_job.py"


rule genotypes_cohort:
    input:
        unpack(job_inputs("genotypes_cohort")),
    output:
        directory(job_output("genotypes_cohort")),
    log:
        L.path("{cohort}", "logs", "genotypes.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "genotypes.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("genotypes_cohort").threads
    resources:
        mem_mb=job_mem_mb("genotypes_cohort"),
    params:
        config=job_params("genotypes_cohort"),
        derived=job_derived("genotypes_cohort"),
    script:
        "../scripts/run_job.py"


rule ld_blocks:
    input:
        unpack(job_inputs("ld_blocks")),
    output:
        directory(job_output("ld_blocks")),
    log:
        L.path("{cohort}", "logs", "ld_blocks.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "ld_blocks.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("ld_blocks").threads
    resources:
        mem_mb=job_mem_mb("ld_blocks"),
    params:
        config=job_params("ld_blocks"),
        derived=job_derived("ld_blocks"),
    script:
        "../scripts/run_job.py"


rule genotypes:
    input:
        TARGETS["genotypes"],
