"""Snakemake adapter: LD blocks of a cohort (genoattn.levels.cohort.run_ld_blocks)."""
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    cohort.run_ld_blocks(snakemake.config, snakemake.wildcards.cohort, snakemake.input.genotypes,
                         snakemake.output[0])
