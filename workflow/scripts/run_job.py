"""The script of every rule but the plots: the job specification's function for this rule
(genoattn.jobs), called with the rule's inputs, output and params, as `genoattn <level>` calls it."""
from genoattn.jobs import Job, run_job
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake) as job_config:  # noqa: F821 (injected by Snakemake)
    run_job(Job(rule=snakemake.rule, wildcards=dict(snakemake.wildcards.items()),  # noqa: F821
                inputs=dict(snakemake.input.items()), output=snakemake.output[0],  # noqa: F821
                config=job_config, derived=dict(snakemake.params.derived), threads=snakemake.threads))  # noqa: F821
