"""Snakemake adapter: one region of a split cohort -> results/{cohort}/genotypes_parts/{part}.zarr
(genoattn.levels.cohort.run_genotypes with region=..., an empty store when no variant is kept)."""
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    cohort.run_genotypes(snakemake.config, snakemake.wildcards.cohort, snakemake.output[0],  # noqa: F821
                         region=snakemake.params.region)  # noqa: F821
