"""The job specification: one entry per workflow rule, read by the Snakemake rules and by the CLI.

Each :class:`JobSpec` says, for one rule:

* ``output``: its results-layout path (a pattern over the rule's wildcards);
* ``inputs``: its named input files, for given wildcards (optional ones absent, not empty);
* ``keys``: the config keys the job reads (dotted paths; ``{reference}``/``{cohort}`` stand for the
  wildcard), so that its ``params`` are exactly those values and nothing else;
* ``expand``: the wildcard values of the jobs a config runs (contigs, shards, pieces);
* ``run``: the function that does the work, ``fn(job)`` with a :class:`Job` (genoattn/jobs_run.py);
* ``derived``: values the job needs that the specification computes from the config (a genotype
  piece's region);
* resources: ``gpu`` (the rule goes to the GPU partition of the SLURM profile), ``threads``,
  ``mem_mb`` (the base; profiles scale it with the attempt).

``workflow/rules/*.smk`` take inputs, output and params from here (``snakemake.params.config`` is the
projection of the config on ``keys``, with canonically ordered keys, so Snakemake's params rerun
trigger fires exactly when a key the job reads changes), and every rule's script is
``workflow/scripts/run_job.py``, which calls ``run``. ``genoattn <level> --config`` builds the same
jobs (:func:`genoattn.cli_jobs.build_jobs`) and calls the same ``run``: the two cannot drift. The per-level
targets (``snakemake level1``, ``train``, ...) are the outputs of :func:`targets`.

Parsing the workflow imports this module and :mod:`genoattn.workflow` only: no torch, no zarr.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from genoattn.workflow import Layout


@dataclass
class Job:
    """One job: a rule at given wildcards, with the inputs, output and params the rule would use."""

    rule: str
    wildcards: dict[str, str]
    inputs: dict[str, Any]
    output: str
    config: dict           # the projection of the config on the rule's keys (= snakemake.params.config)
    derived: dict = field(default_factory=dict)  # values computed from the config (= snakemake.params.derived)
    threads: int = 1

    @property
    def name(self) -> str:
        return " ".join([self.rule, *self.wildcards.values()])

    def input(self, name: str, default=None):
        return self.inputs.get(name, default)


@dataclass(frozen=True)
class JobSpec:
    rule: str
    target: str
    output: str
    keys: Callable[[Layout, dict], list[str]]
    inputs: Callable[[Layout, dict], dict[str, Any]]
    expand: Callable[[Layout], list[dict]]
    run: str                       # "module:function"
    derived: Callable[[Layout, dict], dict] = lambda L, w: {}
    gpu: bool = False
    threads: int = 1
    mem_mb: int | Callable[[Layout, dict, int], int] = 2000   # or fn(layout, wildcards, attempt)
    #: made for a later job of the same target and removed after it (the rule's output is temp()): not one of
    #: the target's outputs (the pieces of a split genotype conversion)
    intermediate: bool = False

    @property
    def wildcard_names(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.output))

    def output_path(self, L: Layout, wildcards: dict, sibling: str | None = None) -> str:
        """The output's path; ``sibling``: a file beside it (a training job's model.json)."""
        path = L.path(*self.output.format(**wildcards).split("/"))
        return str(Path(path).with_name(sibling)) if sibling else path

    def params(self, L: Layout, wildcards: dict) -> dict:
        return canonical(project(L.config, self.keys(L, wildcards), wildcards))

    def job(self, L: Layout, wildcards: dict) -> Job:
        return Job(self.rule, dict(wildcards), self.inputs(L, wildcards), self.output_path(L, wildcards),
                   self.params(L, wildcards), canonical(self.derived(L, wildcards)), self.threads)


# -- params: the config keys a job reads -----------------------------------------------------------------
def project(config: dict, keys: list[str], wildcards: dict) -> dict:
    """The sub-dict of ``config`` holding exactly ``keys`` (dotted paths, ``{wildcard}`` filled in)."""
    out: dict = {}
    for key in keys:
        parts = key.format(**wildcards).split(".")
        node = config
        for p in parts:
            node = node[p]  # a KeyError here is a bug in the spec (the config is validated and filled)
        dst = out
        for p in parts[:-1]:
            dst = dst.setdefault(p, {})
        dst[parts[-1]] = copy.deepcopy(node)
    return out


def canonical(obj):
    """Dicts with sorted keys, recursively (Snakemake compares params by repr: key order must not matter)."""
    return json.loads(json.dumps(obj, sort_keys=True))


# -- helpers shared by the specs ---------------------------------------------------------------------------
def _per_contig(references: Callable[[Layout], list[str]]):
    return lambda L: [{"reference": r, "contig": c} for r in references(L) for c in L.contigs(r)]


def _all_refs(L: Layout) -> list[str]:
    return L.references


def _hic_refs(L: Layout) -> list[str]:
    return [r for r in L.references if L.ref(r)["hic"]]


def _annotated_refs(L: Layout) -> list[str]:
    return [r for r in L.references if L.ref(r)["annotation"]]


def _ref_keys(*names: str) -> list[str]:
    return [f"references.{{reference}}.{n}" for n in names]


def _checkpoint(L: Layout, level: str, owner: str) -> dict:
    """{'checkpoint': path} when the level loads one: a file named in the config, or the workflow's own
    training output (``checkpoint: train``)."""
    path = L.checkpoint(level, owner)
    return {"checkpoint": path} if path else {}


def _fasta_index(fasta: str) -> list[str]:
    return [p for p in (f"{fasta}.fai", f"{fasta}.gzi") if os.path.exists(p)]


def _annotation_mem_mb(L: Layout, w: dict, attempt: int) -> int:
    # parsing holds ~1 KB per row: ~60x a gzip file's size, ~3x a plain one's (GENCODE human: ~3 GB)
    path = L.ref(w["reference"])["annotation"]
    size_mb = os.path.getsize(path) / 1e6 if os.path.exists(path) else 100
    factor = 60 if str(path).endswith((".gz", ".bgz")) else 3
    return int(attempt * max(1000, 500 + factor * size_mb))


HIC_GRAPH_KEYS = ["top_percent", "local_distance", "pseudocount", "chunk_pixels", "balance_missing",
                  "balance_max_iters", "missing_contig", "max_masked_fraction", "insulation_window", "ignore_diags",
                  "boundary_threshold", "min_frac_valid_pixels"]
HIC_TRANS_KEYS = ["pseudocount", "chunk_pixels", "balance_missing", "balance_max_iters", "missing_contig",
                  "max_masked_fraction",
                  "trans_top_percent", "trans_max_links"]
HIC_REF_KEYS = ["hic_resolution", "hic_balance", "contig_aliases", "chr_prefix"]
COHORT_KEYS = ["vcf", "reference", "regions", "ploidy", "chunk_variants", "chunk_samples", "contig_aliases",
               "chr_prefix", "filters"]
#: the keys of levels.level1 that shape the module (what a checkpoint must fit), read by its training
LEVEL1_MODEL_KEYS = ["window", "dim", "heads", "layers", "conv_kernel", "seed"]
#: ... and those of its embeddings as level 2 reads them (the level-1 store's window tiling and strands)
LEVEL1_EMBEDDING_KEYS = ["stride", "reverse_complement", "checkpoint"]
LEVEL2_MODEL_KEYS = ["dim", "heads", "layers", "seed"]
#: the keys of levels.level6 that shape the module (what a checkpoint must fit), read by its training
LEVEL6_MODEL_KEYS = ["dim", "heads", "window", "n_global", "layers", "mlp_ratio", "site_buckets", "windows", "seed"]
LEVEL6_SHARD_KEYS = LEVEL6_MODEL_KEYS + ["samples_per_shard", "batch_size", "query_block", "block_embedding",
                                         "checkpoint"]


def _genotype_keys(L: Layout, w: dict) -> list[str]:
    keys = [f"cohorts.{{cohort}}.{k}" for k in COHORT_KEYS] + ["samples"]
    ref = L.config["cohorts"][w["cohort"]]["reference"]
    if ref:  # variant contigs are mapped onto that reference's names
        keys += [f"references.{ref}.{k}" for k in ("contig_aliases", "include", "exclude")]
    return keys


def _genotype_inputs(L: Layout, w: dict) -> dict:
    c = L.config["cohorts"][w["cohort"]]
    out = {"vcf": c["vcf"]}
    idx = L.vcf_index(w["cohort"])
    if idx:  # a missing index fails inside the job with the command that makes it
        out["index"] = idx
    if L.config["samples"]:
        out["samples"] = L.config["samples"]
    if c["reference"]:
        out["fasta"] = L.ref(c["reference"])["fasta"]
    return out


def _level4_inputs(L: Layout, w: dict) -> dict:
    r, c = w["reference"], w["contig"]
    out = {"hic": L.path(r, "hic", f"{c}.zarr"), "level1": L.path(r, "level1", f"{c}.zarr")}
    if L.level4_reads_level3(r):
        out["level3"] = L.path(r, "level3", f"{c}.zarr")
    if L.ref(r)["regulatory_elements"] and L.level("level4")["nodes"] != "bins":
        out["elements"] = L.ref(r)["regulatory_elements"]
    return out | _checkpoint(L, "level4", r)


def _level4_keys(L: Layout, w: dict) -> list[str]:
    keys = ["levels.level4", "kernels"]
    if L.ref(w["reference"])["regulatory_elements"]:  # the BED's contig names are mapped
        keys += _ref_keys("contig_aliases", "chr_prefix")
    return keys


def _level6_inputs(L: Layout, w: dict) -> dict:
    c = w["cohort"]
    out = {"genotypes": L.path(c, "genotypes.zarr"), "ld_blocks": L.path(c, "ld_blocks.zarr")}
    level5 = L.level6_context(c)
    if level5:
        out["level5"] = level5
    return out | _checkpoint(L, "level6", c)


SPECS: dict[str, JobSpec] = {}


def _spec(**kw) -> None:
    spec = JobSpec(**kw)
    SPECS[spec.rule] = spec


_spec(rule="tokenize_reference", target="tokenize", output="{reference}/tokens.zarr",
      keys=lambda L, w: _ref_keys("contig_aliases", "include", "exclude") + ["levels.tokenize.chunk_size"],
      inputs=lambda L, w: {"fasta": L.ref(w["reference"])["fasta"]},
      expand=lambda L: [{"reference": r} for r in L.references],
      run="genoattn.jobs_run:tokenize", mem_mb=2000)

_spec(rule="annotation", target="annotate", output="{reference}/annotation.parquet",
      keys=lambda L, w: _ref_keys("contig_aliases", "chr_prefix"),
      inputs=lambda L, w: {"annotation": L.ref(w["reference"])["annotation"],
                           "fasta": L.ref(w["reference"])["fasta"],
                           "index": _fasta_index(L.ref(w["reference"])["fasta"])},
      expand=lambda L: [{"reference": r} for r in _annotated_refs(L)],
      run="genoattn.jobs_run:annotation", mem_mb=_annotation_mem_mb)

_spec(rule="level1_contig", target="level1", output="{reference}/level1/{contig}.zarr",
      keys=lambda L, w: ["levels.level1", "kernels"],
      inputs=lambda L, w: ({"tokens": L.path(w["reference"], "tokens.zarr")}
                           | ({"annotation": L.path(w["reference"], "annotation.parquet")}
                              if L.ref(w["reference"])["annotation"] else {})
                           | _checkpoint(L, "level1", w["reference"])),
      expand=_per_contig(_all_refs), run="genoattn.jobs_run:level1", gpu=True, threads=2, mem_mb=4000)

_spec(rule="level2_contig", target="level2", output="{reference}/level2/{contig}.zarr",
      keys=lambda L, w: ["levels.level2", "levels.annotation", "kernels"],
      inputs=lambda L, w: {"annotation": L.path(w["reference"], "annotation.parquet"),
                           "level1": L.path(w["reference"], "level1", f"{w['contig']}.zarr")}
      | _checkpoint(L, "level2", w["reference"]),
      expand=_per_contig(_annotated_refs), run="genoattn.jobs_run:level2", gpu=True, threads=2, mem_mb=6000)

_spec(rule="level3_contig", target="level3", output="{reference}/level3/{contig}.zarr",
      keys=lambda L, w: ["levels.level3", "levels.annotation", "kernels"],
      inputs=lambda L, w: {"annotation": L.path(w["reference"], "annotation.parquet"),
                           "level1": L.path(w["reference"], "level1", f"{w['contig']}.zarr"),
                           "level2": L.path(w["reference"], "level2", f"{w['contig']}.zarr")}
      | _checkpoint(L, "level3", w["reference"]),
      expand=_per_contig(_annotated_refs), run="genoattn.jobs_run:level3", gpu=True, threads=2, mem_mb=6000)

_spec(rule="hic_graph", target="hic", output="{reference}/hic/{contig}.zarr",
      keys=lambda L, w: [f"levels.hic.{k}" for k in HIC_GRAPH_KEYS] + _ref_keys(*HIC_REF_KEYS),
      inputs=lambda L, w: {"hic": L.ref(w["reference"])["hic"], "fasta": L.ref(w["reference"])["fasta"]},
      expand=_per_contig(_hic_refs), run="genoattn.jobs_run:hic_graph", mem_mb=4000)

_spec(rule="hic_trans", target="hic", output="{reference}/hic/trans.zarr",
      keys=lambda L, w: ([f"levels.hic.{k}" for k in HIC_TRANS_KEYS]
                         + _ref_keys(*HIC_REF_KEYS, "include", "exclude")),
      inputs=lambda L, w: ({"hic": L.ref(w["reference"])["hic"], "fasta": L.ref(w["reference"])["fasta"]}
                           | ({"breakpoints": L.ref(w["reference"])["hic_breakpoints"]}
                              if L.ref(w["reference"])["hic_breakpoints"] else {})),
      expand=lambda L: [{"reference": r} for r in _hic_refs(L)], run="genoattn.jobs_run:hic_trans",
      mem_mb=4000)

_spec(rule="level4_contig", target="level4", output="{reference}/level4/{contig}.zarr",
      keys=_level4_keys, inputs=_level4_inputs, expand=_per_contig(_hic_refs),
      run="genoattn.jobs_run:level4", gpu=True, threads=2, mem_mb=8000)

_spec(rule="level5_genome", target="level5", output="{reference}/level5.zarr",
      keys=lambda L, w: ["levels.level5", "kernels"],
      inputs=lambda L, w: {"level4": L.per_contig(w["reference"], "level4/{contig}.zarr"),
                           "trans": L.path(w["reference"], "hic", "trans.zarr")}
      | _checkpoint(L, "level5", w["reference"]),
      expand=lambda L: [{"reference": r} for r in _hic_refs(L)], run="genoattn.jobs_run:level5", gpu=True,
      threads=2, mem_mb=16000)

_spec(rule="genotypes_part", target="genotypes", output="{cohort}/genotypes_parts/{part}.zarr", intermediate=True,
      keys=_genotype_keys, inputs=_genotype_inputs,
      derived=lambda L, w: {"region": L.genotype_part_region(w["cohort"], w["part"])},
      expand=lambda L: [{"cohort": c, "part": p} for c in L.cohorts for p in L.genotype_part_names(c)],
      run="genoattn.jobs_run:genotypes_part", mem_mb=4000)

_spec(rule="genotypes_cohort", target="genotypes", output="{cohort}/genotypes.zarr",
      keys=lambda L, w: _genotype_keys(L, w) + ["cohorts.{cohort}.split_bp"],
      inputs=lambda L, w: _genotype_inputs(L, w) | ({"parts": L.genotype_part_paths(w["cohort"])}
                                                      if L.genotype_part_paths(w["cohort"]) else {}),
      expand=lambda L: [{"cohort": c} for c in L.cohorts], run="genoattn.jobs_run:genotypes_cohort",
      mem_mb=4000)

_spec(rule="ld_blocks", target="genotypes", output="{cohort}/ld_blocks.zarr",
      keys=lambda L, w: ["levels.level6.ld_blocks"],
      inputs=lambda L, w: {"genotypes": L.path(w["cohort"], "genotypes.zarr")},
      expand=lambda L: [{"cohort": c} for c in L.cohorts], run="genoattn.jobs_run:ld_blocks", mem_mb=4000)

_spec(rule="level6_shard", target="level6", output="{cohort}/level6_shards/{shard}.zarr",
      keys=lambda L, w: [f"levels.level6.{k}" for k in LEVEL6_SHARD_KEYS] + ["kernels"],
      inputs=_level6_inputs,
      expand=lambda L: [{"cohort": c, "shard": str(k)} for c in L.cohorts for k in range(L.shard_count(c))],
      run="genoattn.jobs_run:level6_shard", gpu=True, threads=2, mem_mb=8000)

_spec(rule="level6_gather", target="level6", output="{cohort}/level6.zarr",
      keys=lambda L, w: ["levels.level6.dim", "levels.level6.samples_per_shard", "samples",
                         "cohorts.{cohort}.vcf"],
      inputs=lambda L, w: ({"shards": L.shard_paths(w["cohort"]), "genotypes": L.path(w["cohort"], "genotypes.zarr"),
                            "ld_blocks": L.path(w["cohort"], "ld_blocks.zarr")}
                           | ({"samples": L.config["samples"]} if L.config["samples"] else {})),
      expand=lambda L: [{"cohort": c} for c in L.cohorts], run="genoattn.jobs_run:level6_gather", mem_mb=4000)


_spec(rule="train_level1", target="train", output="{reference}/train/level1/model.safetensors",
      keys=lambda L, w: ([f"levels.level1.{k}" for k in LEVEL1_MODEL_KEYS]
                         + ["training.level1", "training.devices", "kernels"] + _ref_keys("held_out")),
      inputs=lambda L, w: {"tokens": L.path(w["reference"], "tokens.zarr")},
      expand=lambda L: [{"reference": r} for r in L.references if L.ref(r)["held_out"]],
      run="genoattn.jobs_run:train_level1", gpu=True, threads=2, mem_mb=8000)


_spec(rule="train_level2", target="train", output="{reference}/train/level2/model.safetensors",
      keys=lambda L, w: ([f"levels.level2.{k}" for k in LEVEL2_MODEL_KEYS]
                         + [f"levels.level1.{k}" for k in LEVEL1_MODEL_KEYS + LEVEL1_EMBEDDING_KEYS]
                         + ["levels.annotation.transcripts", "levels.annotation.canonical_tags",
                            "training.level2", "training.devices", "kernels"] + _ref_keys("held_out")),
      inputs=lambda L, w: ({"tokens": L.path(w["reference"], "tokens.zarr"),
                            "annotation": L.path(w["reference"], "annotation.parquet")}
                           | {f"level1_{k}": v for k, v in _checkpoint(L, "level1", w["reference"]).items()}),
      expand=lambda L: [{"reference": r} for r in _annotated_refs(L) if L.ref(r)["held_out"]],
      run="genoattn.jobs_run:train_level2", gpu=True, threads=2, mem_mb=8000)


#: the keys of levels.level4 that shape the module and the node features it reads, read by its training
LEVEL4_MODEL_KEYS = ["dim", "heads", "edge_dim", "negative_slope", "gene_context", "tad_features", "seed"]
LEVEL5_MODEL_KEYS = ["dim", "heads", "block_size", "local_window", "random_blocks", "global_blocks", "seed"]


def _contacts_inputs(L: Layout, w: dict) -> dict:
    """What held-out contact training reads: the cooler (pixels, the answers), the FASTA, and per contig the
    graph store (edges, expected), the level-1 store and, when level 4 reads genes, the level-3 store."""
    r = w["reference"]
    ref = L.ref(r)
    out = {"cooler": ref["hic"], "fasta": ref["fasta"], "graphs": L.per_contig(r, "hic/{contig}.zarr"),
           "level1": L.per_contig(r, "level1/{contig}.zarr")}
    if L.level4_reads_level3(r):
        out["level3"] = L.per_contig(r, "level3/{contig}.zarr")
    return out


def _contacts_keys(*training: str):
    def keys(L: Layout, w: dict) -> list[str]:
        return ([f"levels.level4.{k}" for k in LEVEL4_MODEL_KEYS] + [f"levels.hic.{k}" for k in HIC_GRAPH_KEYS]
                + _ref_keys(*HIC_REF_KEYS, "held_out") + [f"training.{t}" for t in training]
                + ["training.devices", "kernels"])
    return keys


_spec(rule="train_level4", target="train", output="{reference}/train/level4/model.safetensors",
      keys=_contacts_keys("level4"), inputs=_contacts_inputs,
      expand=lambda L: [{"reference": r} for r in _hic_refs(L) if L.ref(r)["held_out"]],
      run="genoattn.jobs_run:train_level4", gpu=True, threads=2, mem_mb=8000)


def _train_level5_inputs(L: Layout, w: dict) -> dict:
    r = w["reference"]
    out = _contacts_inputs(L, w) | {"centromeres": L.ref(r)["centromeres"]}
    return out | {f"level4_{k}": v for k, v in _checkpoint(L, "level4", r).items()}


_spec(rule="train_level5", target="train", output="{reference}/train/level5/model.safetensors",
      keys=lambda L, w: (_contacts_keys("level5")(L, w) + ["levels.level4.checkpoint"]
                         + [f"levels.level5.{k}" for k in LEVEL5_MODEL_KEYS] + _ref_keys("centromeres")),
      inputs=_train_level5_inputs,
      expand=lambda L: [{"reference": r} for r in _hic_refs(L) if L.ref(r)["held_out"] and L.ref(r)["centromeres"]],
      run="genoattn.jobs_run:train_level5", gpu=True, threads=2, mem_mb=8000)


def _train_level6_inputs(L: Layout, w: dict) -> dict:
    c = w["cohort"]
    out = {"genotypes": L.path(c, "genotypes.zarr"), "ld_blocks": L.path(c, "ld_blocks.zarr")}
    test = L.config["cohorts"][c]["held_out"]["test_cohort"]
    if test:
        out |= {"test_genotypes": L.path(test, "genotypes.zarr"), "test_ld_blocks": L.path(test, "ld_blocks.zarr")}
    level5 = L.level6_context(c)
    return out | ({"level5": level5} if level5 else {})


_spec(rule="train_level6", target="train", output="{cohort}/train/level6/model.safetensors",
      keys=lambda L, w: ([f"levels.level6.{k}" for k in LEVEL6_MODEL_KEYS + ["batch_size", "query_block"]]
                         + ["training.level6", "training.devices", "kernels", "cohorts.{cohort}.held_out"]),
      inputs=_train_level6_inputs,
      expand=lambda L: [{"cohort": c} for c in L.cohorts if L.config["cohorts"][c]["held_out"]],
      run="genoattn.jobs_run:train_level6", gpu=True, threads=2, mem_mb=8000)


_spec(rule="impute_cohort", target="impute", output="{cohort}/imputed.vcf.gz",
      keys=lambda L, w: [f"levels.level6.{k}" for k in LEVEL6_SHARD_KEYS] + ["kernels"],
      inputs=lambda L, w: _level6_inputs(L, w) | ({"head": str(Path(L.checkpoint("level6", w["cohort"]))
                                                               .with_name("head.safetensors"))}
                                                   if L.checkpoint("level6", w["cohort"]) else {}),
      expand=lambda L: [{"cohort": c} for c in L.cohorts], run="genoattn.jobs_run:impute_cohort", gpu=True,
      threads=2, mem_mb=8000)


def _effects_inputs(L: Layout, w: dict) -> dict:
    r = w["reference"]
    ref = L.ref(r)
    out = {"variants": ref["variants"], "fasta": ref["fasta"], "tokens": L.path(r, "tokens.zarr"),
           "level1": L.per_contig(r, "level1/{contig}.zarr")}
    out |= {f"level1_{k}": v for k, v in _checkpoint(L, "level1", r).items()}
    if L.checkpoint("level1", r):   # the masked-base head beside a trained checkpoint (the LLR); absent: no LLR
        head = str(Path(L.checkpoint("level1", r)).with_name("head.safetensors"))
        if L.level("level1")["checkpoint"] == "train" or os.path.exists(head):
            out["level1_head"] = head
    if ref["annotation"]:
        out |= {"annotation": L.path(r, "annotation.parquet"), "level2": L.per_contig(r, "level2/{contig}.zarr"),
                "level3": L.per_contig(r, "level3/{contig}.zarr")}
        for level in ("level2", "level3"):
            out |= {f"{level}_{k}": v for k, v in _checkpoint(L, level, r).items()}
    if ref["hic"]:
        out |= {"hic": L.per_contig(r, "hic/{contig}.zarr"), "trans": L.path(r, "hic", "trans.zarr"),
                "level4": L.per_contig(r, "level4/{contig}.zarr"), "level5": L.path(r, "level5.zarr")}
        for level in ("level4", "level5"):
            out |= {f"{level}_{k}": v for k, v in _checkpoint(L, level, r).items()}
        if ref["regulatory_elements"] and L.level("level4")["nodes"] != "bins":
            out["elements"] = ref["regulatory_elements"]
    return out


_spec(rule="effects_reference", target="effects", output="{reference}/effects/variants.parquet",
      keys=lambda L, w: (_ref_keys("variants", "contig_aliases", "chr_prefix", "regulatory_elements")
                         + [f"levels.{k}" for k in ("level1", "annotation", "level2", "level3", "level4", "level5",
                                                    "effects")] + ["kernels"]),
      inputs=_effects_inputs,
      expand=lambda L: [{"reference": r} for r in L.references if L.ref(r)["variants"]],
      run="genoattn.jobs_run:effects", gpu=True, threads=2, mem_mb=8000)


# -- what the rules and the CLI call ------------------------------------------------------------------------
def spec(rule: str) -> JobSpec:
    return SPECS[rule]


def targets(L: Layout) -> dict[str, list[str]]:
    """Per-level target -> the outputs this config asks for (rule ``all`` asks for all of them)."""
    out: dict[str, list[str]] = {}
    for s in SPECS.values():
        out.setdefault(s.target, [])
        if not s.intermediate:
            out[s.target] += [s.output_path(L, w) for w in s.expand(L)]
    return out


def producer(L: Layout, path: str) -> str | None:
    """The per-level target whose rule writes ``path`` (for the CLI's 'make it first' message)."""
    for s in SPECS.values():
        pattern = re.escape(L.path(*s.output.split("/")))
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", pattern)
        if re.fullmatch(pattern, path):
            return s.target
    return None


def run_job(job: Job) -> Any:
    """Call the rule's function on ``job`` (the Snakemake script and the CLI both end here)."""
    module, _, name = SPECS[job.rule].run.partition(":")
    return getattr(importlib.import_module(module), name)(job)
