# Variant effects (`snakemake effects`): for a reference with `variants:` (a VCF of SNVs and short indels),
# each variant's consequence, level-1 masked-base LLR and the change of every level's embedding, read with
# the levels' own config and checkpoints. Outputs: results/{reference}/effects/variants.parquet and
# variants.vcf.gz (+ .csi, the input records with GA_* INFO fields).


rule effects_reference:
    input:
        unpack(job_inputs("effects_reference")),
    output:
        table=job_output("effects_reference"),
        vcf=job_output("effects_reference", "variants.vcf.gz"),
        index=job_output("effects_reference", "variants.vcf.gz.csi"),
    log:
        L.path("{reference}", "logs", "effects.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "effects.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("effects_reference").threads
    resources:
        mem_mb=job_mem_mb("effects_reference"),
    params:
        config=job_params("effects_reference"),
        derived=job_derived("effects_reference"),
    script:
        "../scripts/run_job.py"


rule effects:
    input:
        TARGETS["effects"],
