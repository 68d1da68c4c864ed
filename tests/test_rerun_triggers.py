"""Rerun triggers, as a table: a config change (or a rewritten checkpoint) and the jobs `snakemake -n` plans.

One real run of the whole workflow on a small config (yeast chrI + chrIII with annotation and Hi-C, level 1
loading its own training output, level 2 a checkpoint file, a small 1000 Genomes cohort; small dims), then
for each row the changed config's dry run over that finished run. Each job's params are exactly the config
keys it reads (genoattn.jobs), so a row plans exactly the jobs that read the key and those above them.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from demo_paths import VCF_1KG, YEAST_COOL, YEAST_FASTA, YEAST_GTF
from test_resume import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

CONFIG = {
    "references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "hic": str(YEAST_COOL),
                             "include": ["chrI", "chrIII"], "held_out": {"test": ["chrIII"]}}},
    "cohorts": {"kg": {"vcf": str(VCF_1KG), "regions": ["20:1500000-1540000"]}},
    "kernels": {"device": "cpu"},
    "training": {"level1": {"steps": 4, "batch": 4, "eval_every": 0, "log_every": 2, "warmup": 1}},
    "levels": {
        "level1": {"dim": 16, "heads": 2, "layers": 1, "window": 128, "stride": 128, "checkpoint": "train"},
        "level2": {"dim": 16, "heads": 2, "checkpoint": "level2.safetensors"},
        "level3": {"dim": 16, "heads": 2},
        "level4": {"dim": 16, "heads": 2, "edge_dim": 8},
        "level5": {"dim": 16, "heads": 2, "block_size": 8, "local_window": 40},
        "level6": {"dim": 16, "heads": 2, "window": 16, "n_global": 2, "samples_per_shard": 150,
                   "ld_blocks": {"min_variants": 5}},
    },
}

SEQ = {"level1_contig", "level2_contig", "level3_contig"}
ABOVE_SEQ = {"level4_contig", "level5_genome"}
HIC = {"hic_graph", "hic_trans"}
COHORT = {"genotypes_cohort", "ld_blocks", "level6_shard", "level6_gather"}
PLOTS = {"plot_level1", "plot_level2", "plot_level3", "plot_hic", "plot_level4", "plot_level5", "plot_level6",
         "plot_training"}


def _set(cfg: dict, dotted: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *path, last = dotted.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


def _reordered(cfg: dict) -> dict:
    """The same config with the keys of every section in reverse order."""
    if isinstance(cfg, dict):
        return {k: _reordered(cfg[k]) for k in reversed(list(cfg))}
    return cfg


# change -> the rules (of the job rules) the dry run must plan, exactly (plots aside)
TABLE = {
    "a level's key (levels.level2.dim)": (
        lambda c: _set(c, "levels.level2.dim", 8), {"level2_contig", "level3_contig"} | ABOVE_SEQ),
    "a level-1 model key reruns its training (levels.level1.layers)": (
        lambda c: _set(c, "levels.level1.layers", 2), {"train_level1"} | SEQ | ABOVE_SEQ),
    "a key only level 1 reads, not its training (levels.level1.stride)": (
        lambda c: _set(c, "levels.level1.stride", 64), SEQ | ABOVE_SEQ),
    "a training key (training.level1.lr)": (
        lambda c: _set(c, "training.level1.lr", 0.002), {"train_level1"} | SEQ | ABOVE_SEQ),
    "a reference's Hi-C key (references.yeast.hic_resolution: the file's own 10000)": (
        lambda c: _set(c, "references.yeast.hic_resolution", 10000), HIC | ABOVE_SEQ),
    "a reference's Hi-C key set to its default (hic_balance: weight)": (
        lambda c: _set(c, "references.yeast.hic_balance", "weight"), set()),
    "a cis-graph key (levels.hic.top_percent)": (
        lambda c: _set(c, "levels.hic.top_percent", 3.0), {"hic_graph"} | ABOVE_SEQ),
    "a trans-link key (levels.hic.trans_top_percent)": (
        lambda c: _set(c, "levels.hic.trans_top_percent", 0.2), {"hic_trans", "level5_genome"}),
    "every key of every section reordered": (_reordered, set()),
    "a level key set to its default (levels.level3.max_rank: 64)": (
        lambda c: _set(c, "levels.level3.max_rank", 64), set()),
    "kernels.backend": (
        lambda c: _set(c, "kernels.backend", "cpu"),
        {"train_level1"} | SEQ | ABOVE_SEQ | {"level6_shard", "level6_gather"}),
    "kernels.attention_dtype": (
        lambda c: _set(c, "kernels.attention_dtype", "float32"),
        {"train_level1"} | SEQ | ABOVE_SEQ | {"level6_shard", "level6_gather"}),
    "a cohort filter (cohorts.kg.filters.maf)": (
        lambda c: _set(c, "cohorts.kg.filters.maf", 0.05), COHORT),
    "an LD-block key (levels.level6.ld_blocks.min_r2)": (
        lambda c: _set(c, "levels.level6.ld_blocks.min_r2", 0.5), {"ld_blocks", "level6_shard", "level6_gather"}),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The whole workflow run once; a level-2 checkpoint file made first (the seeded module, saved)."""
    from genoattn.config import validate_config
    from genoattn.levels.codon import CodonAttention
    from genoattn.model import build_module, save_checkpoint

    wd = tmp_path_factory.mktemp("triggers")
    cfg = validate_config(CONFIG, check_files=False)
    l2 = cfg["levels"]["level2"]
    module, _ = build_module(lambda: CodonAttention(16, l2["dim"], l2["heads"], l2["layers"]), "level2", None, 7)
    save_checkpoint(module, wd / "level2.safetensors", "level2")
    write_config(wd, CONFIG)
    snakemake(wd, timeout=1800)
    assert planned_jobs(snakemake(wd, "-n")) == {}, "a finished run should be up to date"
    return wd


def _plan(finished: Path, cfg: dict) -> set[str]:
    changed = finished / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(snakemake(finished, "-n", "--nolock", "--configfile", str(changed)))
    return {j for j in jobs if j != "all" and j not in PLOTS}


@pytest.mark.parametrize("change", sorted(TABLE))
def test_a_change_plans_exactly_the_jobs_that_read_it(finished, change):
    edit, expected = TABLE[change]
    planned = _plan(finished, edit(CONFIG))
    assert planned == expected, f"{change}: planned {sorted(planned)}, expected {sorted(expected)}"


def test_a_rewritten_checkpoint_reruns_its_level_and_those_above(finished, tmp_path):
    """level 2's checkpoint file, and level 1's own training output, retrained into the same paths (new
    weights, same file names): the level and those above rerun. (Snakemake compares an input's checksum
    as well as its time, so the file really changes here, as retraining changes it.)"""
    from safetensors import safe_open
    from safetensors.torch import save_file

    def retrain(path):
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata()
            state = {k: fh.get_tensor(k) for k in fh.keys()}
        save_file({k: v + 0.01 for k, v in state.items()}, str(path), metadata=meta)

    work = tmp_path / "work"
    shutil.copytree(finished, work, symlinks=True)
    for path, expected in ((work / "level2.safetensors", {"level2_contig", "level3_contig"} | ABOVE_SEQ),
                           (work / "results/yeast/train/level1/model.safetensors", SEQ | ABOVE_SEQ)):
        time.sleep(1.1)
        retrain(path)
        planned = {j for j in planned_jobs(snakemake(work, "-n", "--nolock")) if j != "all" and j not in PLOTS}
        assert planned == expected, f"{path.name}: planned {sorted(planned)}"
        snakemake(work, "--touch", "--nolock")  # mark up to date again before the next row


def test_the_stores_record_the_checkpoint_and_the_kernels(finished):
    import xarray as xr

    from genoattn.io.store import sha256_file

    res = finished / "results" / "yeast"
    l1 = xr.open_zarr(res / "level1" / "chrI.zarr").attrs
    assert l1["model"]["trained"] is True
    assert l1["model"]["checkpoint_sha256"] == sha256_file(res / "train" / "level1" / "model.safetensors")
    for store in (res / "level1" / "chrI.zarr", res / "level2" / "chrI.zarr", res / "level4" / "chrI.zarr",
                  res / "level5.zarr", finished / "results" / "kg" / "level6.zarr"):
        kernels = xr.open_zarr(store).attrs["kernels"]
        assert kernels["backend"] == "cpu" and kernels["device"] == "cpu" and "attention_dtype" in kernels


def test_the_report_shows_training_and_marks_untrained_levels(finished):
    """The run made the training figure (level 1 loads its own training output) and each level's figure
    is labelled with its weights: trained for level 1, untrained for level 3 (seeded) and level 2 (its
    checkpoint file holds seeded weights, and says so in its metadata)."""
    from genoattn.config import validate_config
    from genoattn.workflow import Layout

    assert (finished / "results" / "yeast" / "plots" / "training.png").stat().st_size > 10_000
    cwd = os.getcwd()
    os.chdir(finished)
    try:
        L = Layout(validate_config(CONFIG, check_files=False))
        assert L.weights_label("level1", "yeast").startswith("trained (")
        assert L.weights_label("level2", "yeast").startswith("untrained (checkpoint")
        assert L.weights_label("level3", "yeast") == "untrained (seeded weights)"
        assert L.weights_label("level6", "kg") == "untrained (seeded weights)"
    finally:
        os.chdir(cwd)
