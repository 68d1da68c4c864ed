"""Snakemake adapter: gather the level-6 shards into results/{cohort}/level6.zarr."""
from genoattn.io.samples import covariates
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    cohort.gather(list(snakemake.input.shards), snakemake.input.genotypes, snakemake.input.ld_blocks,
                  snakemake.output[0], snakemake.params.cfg, cohort=snakemake.wildcards.cohort,
                  covariates=covariates(snakemake.config, snakemake.wildcards.cohort))
