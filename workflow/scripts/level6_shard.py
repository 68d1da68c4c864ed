"""Snakemake adapter: level 6 for one shard of samples (genoattn.levels.cohort.run_shard)."""
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    cohort.run_shard(snakemake.input.genotypes, snakemake.input.ld_blocks, snakemake.output[0],
                     int(snakemake.wildcards.shard), snakemake.params.cfg,
                     level5=snakemake.input.level5 or None, device=snakemake.params.device,
                     cohort=snakemake.wildcards.cohort)
