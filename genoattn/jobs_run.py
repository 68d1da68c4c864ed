"""What each rule of the job specification (:mod:`genoattn.jobs`) runs: ``fn(job)`` per rule.

``job.config`` holds exactly the config keys the rule reads (its params), in the config's own shape;
``job.inputs`` its named input files; ``job.derived`` what the specification computes from the
config (a genotype piece's region). Heavy modules are imported inside each function.
"""

from __future__ import annotations

from pathlib import Path

from genoattn.jobs import Job


def _level_cfg(job: Job, level: str) -> dict:
    """The level's section with ``checkpoint`` resolved to the file the rule takes as input."""
    cfg = dict(job.config["levels"][level])
    cfg["checkpoint"] = job.input("checkpoint")
    return cfg


def _device(job: Job) -> str:
    return job.config["kernels"]["device"]


def tokenize(job: Job):
    from genoattn.levels import tokenize as level0

    ref = job.config["references"][job.wildcards["reference"]]
    level0.run(job.inputs["fasta"], job.output, ref, chunk_size=job.config["levels"]["tokenize"]["chunk_size"])


def annotation(job: Job):
    from genoattn.io import annotation as ann

    r = job.wildcards["reference"]
    ann.run(job.inputs["annotation"], job.inputs["fasta"], job.output, reference_cfg=job.config["references"][r],
            reference=r)


def level1(job: Job):
    from genoattn.levels import level1 as l1

    l1.run(job.inputs["tokens"], job.wildcards["contig"], job.output, _level_cfg(job, "level1"),
           annotation_path=job.input("annotation"), device=_device(job))


def _levels23_config(job: Job, level: str) -> dict:
    return {"levels": {level: _level_cfg(job, level), "annotation": dict(job.config["levels"]["annotation"])},
            "kernels": dict(job.config["kernels"])}


def level2(job: Job):
    from genoattn.levels import codon

    codon.run(job.inputs["annotation"], job.inputs["level1"], job.output, job.wildcards["contig"],
              _levels23_config(job, "level2"))


def level3(job: Job):
    from genoattn.levels import exon

    exon.run(job.inputs["annotation"], job.inputs["level1"], job.inputs["level2"], job.output,
             job.wildcards["contig"], _levels23_config(job, "level3"))


def _hic_ref(job: Job) -> dict:
    """The reference keys the Hi-C rules read, with the input files' paths."""
    ref = dict(job.config["references"][job.wildcards["reference"]])
    ref.update(fasta=job.inputs["fasta"], hic=job.inputs["hic"], hic_breakpoints=job.input("breakpoints"))
    return ref


def hic_graph(job: Job):
    from genoattn import hic

    hic.run_contig(_hic_ref(job), job.wildcards["contig"], job.output, dict(job.config["levels"]["hic"]))


def hic_trans(job: Job):
    from genoattn import hic
    from genoattn.levels.tokenize import selected_records

    ref = _hic_ref(job)
    contigs = [r[0] for r in selected_records(ref["fasta"], ref["contig_aliases"], ref["include"], ref["exclude"])]
    hic.run_trans(ref, contigs, job.output, dict(job.config["levels"]["hic"]))


def level4(job: Job):
    from genoattn.levels import regulatory

    ref = job.config.get("references", {}).get(job.wildcards["reference"], {})
    regulatory.run(job.inputs["hic"], job.inputs["level1"], job.output, _level_cfg(job, "level4"),
                   level3_path=job.input("level3"), kernels_cfg=job.config["kernels"],
                   inputs=[job.input("elements")], contig=job.wildcards["contig"],
                   regulatory_elements=job.input("elements"),
                   contig_policy={k: ref[k] for k in ("contig_aliases", "chr_prefix") if k in ref})


def level5(job: Job):
    from genoattn.levels import chromosome

    chromosome.run(list(job.inputs["level4"]), job.output, _level_cfg(job, "level5"),
                   trans_path=job.inputs["trans"], kernels_cfg=job.config["kernels"],
                   layout_cache=str(Path(job.output).with_name("level5_layout.npz")))


def _cohort_config(job: Job) -> dict:
    """The keys the genotype rules read, in the config's shape, with the input files' paths."""
    cfg = {"cohorts": {job.wildcards["cohort"]: dict(job.config["cohorts"][job.wildcards["cohort"]])},
           "samples": job.input("samples"), "references": {}}
    cohort = cfg["cohorts"][job.wildcards["cohort"]]
    cohort["vcf"] = job.inputs["vcf"]
    if cohort["reference"]:
        cfg["references"][cohort["reference"]] = dict(job.config["references"][cohort["reference"]],
                                                      fasta=job.inputs["fasta"])
    return cfg


def genotypes_part(job: Job):
    from genoattn.levels import cohort

    cohort.run_genotypes(_cohort_config(job), job.wildcards["cohort"], job.output, region=job.derived["region"])


def genotypes_cohort(job: Job):
    from genoattn.levels import cohort

    parts = list(job.input("parts", []))
    if parts:
        cohort.join_genotypes(_cohort_config(job), job.wildcards["cohort"], parts, job.output)
    else:
        cohort.run_genotypes(_cohort_config(job), job.wildcards["cohort"], job.output)


def ld_blocks(job: Job):
    from genoattn.ld import write_ld_blocks

    write_ld_blocks(job.inputs["genotypes"], job.output, job.config["levels"]["level6"]["ld_blocks"],
                    {"cohort": job.wildcards["cohort"]})


def level6_shard(job: Job):
    from genoattn.levels import cohort

    cohort.run_shard(job.inputs["genotypes"], job.inputs["ld_blocks"], job.output, int(job.wildcards["shard"]),
                     _level_cfg(job, "level6"), level5=job.input("level5"), device=_device(job),
                     cohort=job.wildcards["cohort"])


def level6_gather(job: Job):
    from genoattn.io.samples import covariates
    from genoattn.levels import cohort

    c = job.wildcards["cohort"]
    cfg = {"cohorts": {c: {"vcf": job.config["cohorts"][c]["vcf"]}}, "samples": job.input("samples")}
    cohort.gather(list(job.inputs["shards"]), job.inputs["genotypes"], job.inputs["ld_blocks"], job.output,
                  job.config["levels"]["level6"], cohort=c, covariates=covariates(cfg, c))


# -- training (genoattn/training/): one function per trainable level ------------------------------------------
def _spawn_ranks(job: Job) -> bool:
    """With training.devices > 1, rerun this job under torchrun (one process per device) and return True;
    inside those processes (or with one device) return False and train here."""
    import os

    n = job.config["training"]["devices"]
    if n <= 1 or "LOCAL_RANK" in os.environ:
        return False
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(job.__dict__, fh)
    try:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
               "-m", "genoattn.training.worker", fh.name]
        subprocess.run(cmd, check=True)
    finally:
        os.unlink(fh.name)
    return True


def _train_device(job: Job):
    import os

    from genoattn.model import pick_device

    device = pick_device(job.config["kernels"]["device"])
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        import torch

        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    return device


def _identity(job: Job, inputs: list[str]) -> dict:
    """What a training state and model.json are tied to: the job's params and its inputs' provenance.

    The schedule length (``training.<level>.steps``) is left out: a state resumes on a longer or shorter
    schedule (see :mod:`genoattn.training.loop`)."""
    import copy

    from genoattn.io.store import read_attrs

    config = copy.deepcopy(job.config)
    for section in config.get("training", {}).values():
        if isinstance(section, dict):
            section.pop("steps", None)
    return {"rule": job.rule, "wildcards": job.wildcards, "config": config,
            "inputs": {p: read_attrs(p).get("inputs", {}) for p in inputs}}


def _train_setup(job: Job):
    """(device, tokens store, contig split) of a training job, its process group joined."""
    from genoattn.io.store import read_attrs
    from genoattn.training.loop import init_distributed
    from genoattn.training.split import split_contigs

    r = job.wildcards["reference"]
    device = _train_device(job)
    init_distributed(device)
    tokens = job.inputs["tokens"]
    split = split_contigs(list(read_attrs(tokens)["contigs"]), job.config["references"][r]["held_out"],
                          f"references.{r}.held_out")
    return device, tokens, split


def train_level1(job: Job):
    if _spawn_ranks(job):
        return
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module
    from genoattn.training.loop import loop_options, train
    from genoattn.training.masked_bases import MaskedBases

    device, tokens, split = _train_setup(job)
    cfg = job.config["levels"]["level1"]
    module, _ = build_module(lambda: level1_module(cfg), "level1", None, cfg["seed"])
    objective = MaskedBases(module, tokens, split, job.config["training"]["level1"],
                            backend=job.config["kernels"]["backend"], device=device)
    train(objective, loop_options(job.config["training"]["level1"]), Path(job.output).parent, device,
          _identity(job, [tokens]))


def train_level2(job: Job):
    if _spawn_ranks(job):
        return
    from genoattn.levels.codon import CodonAttention
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module
    from genoattn.training.loop import loop_options, train
    from genoattn.training.masked_codons import MaskedCodons

    device, tokens, split = _train_setup(job)
    annotation = job.inputs["annotation"]
    l1 = job.config["levels"]["level1"]
    level1, _ = build_module(lambda: level1_module(l1), "level1", job.input("level1_checkpoint"), l1["seed"])
    cfg = job.config["levels"]["level2"]
    module, _ = build_module(lambda: CodonAttention(l1["dim"], cfg["dim"], cfg["heads"], cfg["layers"]), "level2",
                             None, cfg["seed"])
    objective = MaskedCodons(module, level1, l1, tokens, annotation, split, job.config["levels"]["annotation"],
                             job.config["training"]["level2"], backend=job.config["kernels"]["backend"],
                             device=device)
    identity = _identity(job, [tokens])
    if job.input("level1_checkpoint"):
        from genoattn.io.store import sha256_file

        identity["level1_checkpoint_sha256"] = sha256_file(job.input("level1_checkpoint"))
    train(objective, loop_options(job.config["training"]["level2"]), Path(job.output).parent, device, identity)


def train_level6(job: Job):
    if _spawn_ranks(job):
        return
    from genoattn.levels.cohort import Level5Context, build_model
    from genoattn.training.loop import init_distributed, loop_options, train
    from genoattn.training.masked_genotypes import MaskedGenotypes

    device = _train_device(job)
    init_distributed(device)
    c = job.wildcards["cohort"]
    opts = dict(job.config["levels"]["level6"], checkpoint=None)
    level5 = job.input("level5")
    module, _ = build_model(opts, Level5Context(level5).dim if level5 else 0)
    test = (job.inputs["test_genotypes"], job.input("test_ld_blocks")) if job.input("test_genotypes") else None
    objective = MaskedGenotypes(module, job.inputs["genotypes"], job.inputs["ld_blocks"],
                                job.config["cohorts"][c]["held_out"], job.config["training"]["level6"], opts,
                                test=test, level5=level5, device=device)
    inputs = [job.inputs["genotypes"]] + ([test[0]] if test else [])
    train(objective, loop_options(job.config["training"]["level6"]), Path(job.output).parent, device,
          _identity(job, inputs))


def _contacts_setup(job: Job):
    """(device, split, reference entry with the job's input paths, per-contig inputs) of a contact training job."""
    from genoattn.training.loop import init_distributed
    from genoattn.training.split import split_contigs

    r = job.wildcards["reference"]
    device = _train_device(job)
    init_distributed(device)

    def by_contig(name):
        return {Path(p).name.removesuffix(".zarr"): p for p in job.input(name, [])}

    graphs = by_contig("graphs")
    split = split_contigs(list(graphs), job.config["references"][r]["held_out"], f"references.{r}.held_out")
    ref = dict(job.config["references"][r], hic=job.inputs["cooler"], fasta=job.inputs["fasta"])
    return device, split, ref, graphs, by_contig("level1"), by_contig("level3")


def _contacts_identity(job: Job, graphs: dict, level1: dict, level3: dict) -> dict:
    """_identity plus the weights behind the level-1/level-3 stores (their node features): a store rebuilt
    with another checkpoint is another training."""
    from genoattn.io.store import read_attrs

    identity = _identity(job, list(graphs.values()) + list(level1.values()) + list(level3.values()))
    identity["upstream_models"] = {p: read_attrs(p).get("model") for p in [*level1.values(), *level3.values()]}
    return identity


def train_level4(job: Job):
    if _spawn_ranks(job):
        return
    from genoattn.training.held_out_contacts import train_job
    from genoattn.training.loop import loop_options

    device, split, ref, graphs, level1, level3 = _contacts_setup(job)
    cfg = job.config["training"]["level4"]
    train_job(ref, job.config["levels"]["hic"], job.config["levels"]["level4"], cfg, job.config["kernels"], split,
              graphs, level1, level3, Path(job.output).parent, device, _contacts_identity(job, graphs, level1, level3),
              loop_options(cfg))


def train_level5(job: Job):
    if _spawn_ranks(job):
        return
    from genoattn.training.loop import loop_options
    from genoattn.training.trans_contacts import train_job

    device, split, ref, graphs, level1, level3 = _contacts_setup(job)
    cfg = job.config["training"]["level5"]
    identity = _contacts_identity(job, graphs, level1, level3)
    if job.input("level4_checkpoint"):
        from genoattn.io.store import sha256_file

        identity["level4_checkpoint_sha256"] = sha256_file(job.input("level4_checkpoint"))
    train_job(ref, job.config["levels"]["hic"], job.config["levels"]["level4"], job.config["levels"]["level5"], cfg,
              job.config["kernels"], split, graphs, level1, level3, job.input("level4_checkpoint"),
              job.inputs["centromeres"], Path(job.output).parent, device, identity, loop_options(cfg))


def impute_cohort(job: Job):
    from genoattn.imputation import impute_cohort as impute
    from genoattn.imputation import imputed_store

    impute(job.inputs["genotypes"], job.inputs["ld_blocks"], job.output,
           imputed_store(job.output), _level_cfg(job, "level6"), job.input("checkpoint"),
           level5=job.input("level5"), device=_device(job), cohort=job.wildcards["cohort"])


def effects(job: Job):
    from genoattn.effects.run import run

    r = job.wildcards["reference"]
    inputs = dict(job.inputs)
    for level in ("level1", "level2", "level3", "level4", "level5"):
        inputs[f"{level}_checkpoint"] = job.input(f"{level}_checkpoint")
    levels = {k: dict(v) for k, v in job.config["levels"].items()}
    levels["level1"]["checkpoint"] = job.input("level1_checkpoint")
    run(inputs, job.output, r, job.config["references"][r], levels, job.config["kernels"])
