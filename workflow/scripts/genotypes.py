"""Snakemake adapter: VCF/BCF -> results/{cohort}/genotypes.zarr (genoattn.levels.cohort.run_genotypes)."""
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    cohort.run_genotypes(snakemake.config, snakemake.wildcards.cohort, snakemake.output[0])
