# Imputation (`snakemake impute`): the missing calls of each cohort filled by the trained level 6
# (levels.level6.checkpoint, trained on masked genotypes, with its head.safetensors beside it).
# Not part of `all`. Outputs: results/{cohort}/imputed.vcf.gz (+ .csi) and imputed.zarr.


rule impute_cohort:
    input:
        unpack(job_inputs("impute_cohort")),
    output:
        vcf=job_output("impute_cohort"),
        index=job_output("impute_cohort", "imputed.vcf.gz.csi"),
        store=directory(job_output("impute_cohort", "imputed.zarr")),
    log:
        L.path("{cohort}", "logs", "impute.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "impute.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("impute_cohort").threads
    resources:
        mem_mb=job_mem_mb("impute_cohort"),
    params:
        config=job_params("impute_cohort"),
        derived=job_derived("impute_cohort"),
    script:
        "../scripts/run_job.py"


rule impute:
    input:
        TARGETS["impute"],
