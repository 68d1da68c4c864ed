"""Snakemake adapter for level 5 (genoattn.levels.chromosome)."""
from genoattn.levels import chromosome
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    chromosome.run(list(snakemake.input.level4), snakemake.output[0], snakemake.params.cfg,
                   trans_path=snakemake.input.trans, kernels_cfg=snakemake.params.kernels,
                   layout_cache=snakemake.params.layout_cache, inputs=snakemake.params.raw_inputs)
