"""Snakemake adapter: VCF/BCF -> results/{cohort}/genotypes.zarr (genoattn.levels.cohort.run_genotypes),
or the join of its pieces when the cohort is split (genoattn.levels.cohort.join_genotypes)."""
from genoattn.levels import cohort
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    parts = list(snakemake.input.get("parts", []))  # noqa: F821
    if parts:
        cohort.join_genotypes(snakemake.config, snakemake.wildcards.cohort, parts, snakemake.output[0])  # noqa: F821
    else:
        cohort.run_genotypes(snakemake.config, snakemake.wildcards.cohort, snakemake.output[0])  # noqa: F821
