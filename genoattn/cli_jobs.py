"""One job of a level outside Snakemake: the arguments each rule passes, built from Layout + config.

`genoattn hic|level1..level6|genotypes --config CONFIG ...` (genoattn/cli.py) builds a list of
:class:`Job` here and runs it. Every builder mirrors its rule in workflow/rules/*.smk and adapter in
workflow/scripts/*.py (inputs, optional inputs, params); change both together. Inputs are the
results-layout paths of the level below; a missing one is an error naming the `snakemake` target
that makes it. Also holds the `genoattn level1 --sequence` example (spec: FLOPs, memory, time).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from genoattn.workflow import Layout


@dataclass
class Job:
    """One rule job: ``run(out)`` writes ``output``; ``inputs`` maps each input path to the
    Snakemake target that makes it. ``final``: the job's output is what the command is for
    (``--out`` may replace it); intermediate jobs (level-6 shards before the gather) keep theirs."""

    name: str
    output: str
    run: Callable[[str], object]
    inputs: dict[str, str] = field(default_factory=dict)
    final: bool = True


class Context:
    def __init__(self, config: dict, config_path: str):
        self.config = config
        self.config_path = config_path
        self.L = Layout(config)

    def reference(self, name: str | None, need: str | None = None, what: str = "") -> str:
        refs = self.L.references
        if name is None:
            if len(refs) != 1:
                raise ValueError(f"{self.config_path} has references {', '.join(refs)}: choose one with --reference")
            name = refs[0]
        if name not in refs:
            raise ValueError(f"--reference {name!r} is not in {self.config_path} (references: {', '.join(refs)})")
        if need and not self.L.ref(name).get(need):
            raise ValueError(f"references.{name} has no `{need}` in {self.config_path}: {what} needs one")
        return name

    def cohort(self, name: str | None) -> str:
        cohorts = self.L.cohorts
        if not cohorts:
            raise ValueError(f"{self.config_path} has no `cohorts`")
        if name is None:
            if len(cohorts) != 1:
                raise ValueError(f"{self.config_path} has cohorts {', '.join(cohorts)}: choose one with --cohort")
            name = cohorts[0]
        if name not in cohorts:
            raise ValueError(f"--cohort {name!r} is not in {self.config_path} (cohorts: {', '.join(cohorts)})")
        return name

    def contigs(self, reference: str, contig: str | None) -> list[str]:
        selected = self.L.contigs(reference)
        if contig is None:
            return selected
        if contig not in selected:
            more = " ..." if len(selected) > 20 else ""
            raise ValueError(f"--contig {contig!r} is not a selected contig of references.{reference} "
                             f"(include/exclude select: {', '.join(selected[:20])}{more})")
        return [contig]

    def device(self) -> str:
        return self.config["kernels"]["device"]


def missing_input_message(path: str, target: str, config_path: str) -> str:
    return (f"input {path} does not exist: make it first with `snakemake --configfile {config_path} {target}` "
            f"(or `snakemake --configfile {config_path} {path}` for this file only)")


def check_inputs(jobs: list[Job], config_path: str) -> None:
    """Every input that no earlier job of the list makes must exist (checked before anything runs)."""
    made: set[str] = set()
    for job in jobs:
        for path, target in job.inputs.items():
            if path not in made and not os.path.exists(path):
                raise FileNotFoundError(missing_input_message(path, target, config_path))
        made.add(job.output)


def run_jobs(jobs: list[Job], config_path: str, out: str | None = None, log=print) -> list[str]:
    """Run the jobs in order (``out`` replaces the single final job's output); return the outputs."""
    if out is not None:
        finals = [j for j in jobs if j.final]
        if len(finals) != 1:
            raise ValueError(f"--out names one store but this command writes {len(finals)} "
                             f"({', '.join(j.output for j in finals[:4])}{' ...' if len(finals) > 4 else ''}): "
                             "pick one with --contig (or --shard / --step), or leave --out out")
        finals[0].output = out
    check_inputs(jobs, config_path)
    done = []
    for job in jobs:
        t0 = time.time()
        job.run(job.output)
        log(f"{job.name}: wrote {job.output} ({time.time() - t0:.1f} s)")
        done.append(job.output)
    return done


# -- one builder per level (mirrors workflow/rules/<level>.smk + workflow/scripts/<level>.py) ----------------
def level1_jobs(ctx: Context, reference: str | None = None, contig: str | None = None, **_) -> list[Job]:
    from genoattn.levels import level1

    r = ctx.reference(reference)
    L = ctx.L
    tokens = L.path(r, "tokens.zarr")
    annotation = L.path(r, "annotation.parquet") if L.ref(r).get("annotation") else None
    inputs = {tokens: "tokenize"} | ({annotation: "annotate"} if annotation else {})
    return [Job(f"level1 {r} {c}", L.path(r, "level1", f"{c}.zarr"),
                lambda out, c=c: level1.run(tokens, c, out, L.level("level1"), annotation_path=annotation,
                                            device=ctx.device()), dict(inputs))
            for c in ctx.contigs(r, contig)]


def hic_jobs(ctx: Context, reference: str | None = None, contig: str | None = None, **_) -> list[Job]:
    """Per-contig graphs then trans.zarr (`--contig trans`: only trans.zarr), as rules hic_graph/hic_trans."""
    from genoattn import hic

    r = ctx.reference(reference, "hic", "the Hi-C graph")
    L = ctx.L
    ref = L.ref(r)
    keys = ("fasta", "hic", "hic_resolution", "hic_balance", "hic_breakpoints", "contig_aliases", "chr_prefix")
    ref_params = {k: ref.get(k) for k in keys}
    cfg = dict(L.level("hic"))
    jobs = []
    if contig != "trans":
        jobs += [Job(f"hic {r} {c}", L.path(r, "hic", f"{c}.zarr"),
                     lambda out, c=c: hic.run_contig(dict(ref_params), c, out, cfg))
                 for c in ctx.contigs(r, contig)]
    if contig in (None, "trans"):
        jobs.append(Job(f"hic {r} trans", L.path(r, "hic", "trans.zarr"),
                        lambda out: hic.run_trans(dict(ref_params), list(L.contigs(r)), out, cfg)))
    return jobs


def _levels23_config(ctx: Context, level: str) -> dict:
    return {"levels": {level: dict(ctx.L.level(level)), "annotation": dict(ctx.L.level("annotation"))},
            "kernels": {"device": ctx.device()}}


def _levels23_device(ctx: Context):
    return None if ctx.device() == "auto" else ctx.device()


def level2_jobs(ctx: Context, reference: str | None = None, contig: str | None = None, **_) -> list[Job]:
    from genoattn.levels import codon

    r = ctx.reference(reference, "annotation", "level 2")
    L = ctx.L
    ann = L.path(r, "annotation.parquet")
    jobs = []
    for c in ctx.contigs(r, contig):
        l1 = L.path(r, "level1", f"{c}.zarr")
        jobs.append(Job(f"level2 {r} {c}", L.path(r, "level2", f"{c}.zarr"),
                        lambda out, c=c, l1=l1: codon.run(ann, l1, out, c, _levels23_config(ctx, "level2"),
                                                          device=_levels23_device(ctx)),
                        {ann: "annotate", l1: "level1"}))
    return jobs


def level3_jobs(ctx: Context, reference: str | None = None, contig: str | None = None, **_) -> list[Job]:
    from genoattn.levels import exon

    r = ctx.reference(reference, "annotation", "level 3")
    L = ctx.L
    ann = L.path(r, "annotation.parquet")
    jobs = []
    for c in ctx.contigs(r, contig):
        l1, l2 = L.path(r, "level1", f"{c}.zarr"), L.path(r, "level2", f"{c}.zarr")
        jobs.append(Job(f"level3 {r} {c}", L.path(r, "level3", f"{c}.zarr"),
                        lambda out, c=c, l1=l1, l2=l2: exon.run(ann, l1, l2, out, c, _levels23_config(ctx, "level3"),
                                                                device=_levels23_device(ctx)),
                        {ann: "annotate", l1: "level1", l2: "level2"}))
    return jobs


def level4_level3(ctx: Context, reference: str, contig: str) -> str | None:
    """The level-3 store level 4 reads (rule level4_contig's level4_level3: gene_context and annotation)."""
    setting = ctx.L.level("level4")["gene_context"]
    if setting is False:
        return None
    if setting is True or ctx.L.ref(reference).get("annotation"):
        return ctx.L.path(reference, "level3", f"{contig}.zarr")
    return None


def level4_jobs(ctx: Context, reference: str | None = None, contig: str | None = None, **_) -> list[Job]:
    from genoattn.levels import regulatory

    r = ctx.reference(reference, "hic", "level 4")
    L = ctx.L
    ref = L.ref(r)
    policy = {"contig_aliases": ref.get("contig_aliases", {}), "chr_prefix": ref.get("chr_prefix", "auto")}
    elements = ref.get("regulatory_elements") or None
    jobs = []
    for c in ctx.contigs(r, contig):
        hic_path, l1 = L.path(r, "hic", f"{c}.zarr"), L.path(r, "level1", f"{c}.zarr")
        l3 = level4_level3(ctx, r, c)
        inputs = {hic_path: "hic", l1: "level1"} | ({l3: "level3"} if l3 else {})
        jobs.append(Job(f"level4 {r} {c}", L.path(r, "level4", f"{c}.zarr"),
                        lambda out, c=c, h=hic_path, l1=l1, l3=l3: regulatory.run(
                            h, l1, out, L.level("level4"), level3_path=l3, kernels_cfg=ctx.config["kernels"],
                            inputs=[ref.get("hic"), ref.get("regulatory_elements")], contig=c,
                            regulatory_elements=elements, contig_policy=policy),
                        inputs))
    return jobs


def level5_jobs(ctx: Context, reference: str | None = None, **_) -> list[Job]:
    from genoattn.levels import chromosome

    r = ctx.reference(reference, "hic", "level 5")
    L = ctx.L
    ref = L.ref(r)
    level4 = L.per_contig(r, "level4/{contig}.zarr")
    trans = L.path(r, "hic", "trans.zarr")
    return [Job(f"level5 {r}", L.path(r, "level5.zarr"),
                lambda out: chromosome.run(list(level4), out, L.level("level5"), trans_path=trans,
                                           kernels_cfg=ctx.config["kernels"],
                                           layout_cache=L.path(r, "level5_layout.npz"),
                                           inputs=[ref.get("hic"), ref.get("hic_breakpoints")]),
                {**{p: "level4" for p in level4}, trans: "hic"})]


def genotypes_jobs(ctx: Context, cohort: str | None = None, step: str = "all", **_) -> list[Job]:
    """genotypes.zarr then ld_blocks.zarr (the `genotypes` target), or one of them (``step``)."""
    from genoattn.levels import cohort as cohort_mod

    c = ctx.cohort(cohort)
    L = ctx.L
    geno, ld = L.path(c, "genotypes.zarr"), L.path(c, "ld_blocks.zarr")
    jobs = []
    if step in ("all", "genotypes"):
        parts = L.genotype_part_paths(c)  # cohorts.<name>.split_bp: one job per region, then the join
        for path, region in zip(parts, L.genotype_parts(c)):
            jobs.append(Job(f"genotypes_part {c} {region}", path,
                            lambda out, region=region: cohort_mod.run_genotypes(ctx.config, c, out, region=region),
                            final=False))
        if parts:
            jobs.append(Job(f"genotypes {c}", geno, lambda out: cohort_mod.join_genotypes(ctx.config, c, parts, out),
                            {p: "genotypes" for p in parts}))
        else:
            jobs.append(Job(f"genotypes {c}", geno, lambda out: cohort_mod.run_genotypes(ctx.config, c, out)))
    if step in ("all", "ld_blocks"):
        # --out with --step genotypes only: ld_blocks always reads the layout's genotypes.zarr
        jobs.append(Job(f"ld_blocks {c}", ld, lambda out: cohort_mod.run_ld_blocks(ctx.config, c, geno, out),
                        {geno: "genotypes"}))
    return jobs


def level6_level5(ctx: Context, cohort: str) -> str | None:
    """results/{reference}/level5.zarr when the cohort names a reference that has (or will have) one."""
    ref = ctx.config["cohorts"][cohort].get("reference")
    if not ref:
        return None
    path = ctx.L.path(ref, "level5.zarr")
    return path if ctx.L.ref(ref).get("hic") or os.path.exists(path) else None


def level6_jobs(ctx: Context, cohort: str | None = None, shard: int | None = None, gather: bool = False,
                **_) -> list[Job]:
    """One shard (``shard``), only the gather of existing shards (``gather``), or every shard then the gather."""
    from genoattn.io.samples import covariates
    from genoattn.levels import cohort as cohort_mod

    c = ctx.cohort(cohort)
    L = ctx.L
    cfg = L.level("level6")
    geno, ld = L.path(c, "genotypes.zarr"), L.path(c, "ld_blocks.zarr")
    level5 = level6_level5(ctx, c)
    n = cohort_mod.shard_count(ctx.config, c)
    shard_paths = [L.path(c, "level6_shards", f"{k}.zarr") for k in range(n)]
    if shard is not None and not 0 <= shard < n:
        raise ValueError(f"--shard {shard}: cohort {c} has {n} shard(s) (0..{n - 1}) of "
                         f"levels.level6.samples_per_shard={cfg['samples_per_shard']}")
    shard_inputs = {geno: "genotypes", ld: "genotypes"} | ({level5: "level5"} if level5 else {})
    jobs = []
    if not gather:
        for k in ([shard] if shard is not None else range(n)):
            jobs.append(Job(f"level6 {c} shard {k}", shard_paths[k],
                            lambda out, k=k: cohort_mod.run_shard(geno, ld, out, k, cfg, level5=level5,
                                                                  device=ctx.device(), cohort=c),
                            dict(shard_inputs), final=shard is not None))
    if shard is None:
        jobs.append(Job(f"level6 {c} gather", L.path(c, "level6.zarr"),
                        lambda out: cohort_mod.gather(list(shard_paths), geno, ld, out, cfg, cohort=c,
                                                      covariates=covariates(ctx.config, c)),
                        {**{p: "level6" for p in shard_paths}, geno: "genotypes", ld: "genotypes"}))
    return jobs


BUILDERS = {"hic": hic_jobs, "level1": level1_jobs, "level2": level2_jobs, "level3": level3_jobs,
            "level4": level4_jobs, "level5": level5_jobs, "genotypes": genotypes_jobs, "level6": level6_jobs}


def run_level(level: str, config_path: str, out: str | None = None, threads: int | None = None,
              log=print, **selection) -> list[str]:
    """Load and validate ``config_path`` (as the Snakefile does), build the level's jobs, run them."""
    from genoattn.config import load_config
    from genoattn.kernels.dispatch import configure
    from genoattn.runtime import set_threads

    config = load_config(config_path)
    configure(config.get("kernels"))
    set_threads(threads)
    jobs = BUILDERS[level](Context(config, config_path), **selection)
    return run_jobs(jobs, config_path, out=out, log=log)


# -- `genoattn level1 --sequence`: one window, FLOPs, memory and time (the spec's example) -------------------
def level1_example(args) -> int:
    """Run one window of the given sequence and print FLOPs, memory and time (the spec's example)."""
    import torch

    from genoattn import alphabet
    from genoattn.kernels import resolve
    from genoattn.levels.level1 import describe_window, embed_windows, load_model, window_batch
    from genoattn.model import pick_device

    seq = args.sequence.strip()
    tokens, _ = alphabet.encode(seq)
    bad = alphabet.first_invalid(tokens)
    if bad is not None:
        print(f"--sequence: invalid character {seq[bad]!r} at position {bad + 1}", file=sys.stderr)
        return 2
    if len(seq) > args.window_size:
        print(f"note: --sequence is {len(seq)} bp; only the first window of {args.window_size} bp is run")
    cfg = {"dim": args.dim, "heads": args.heads, "window": args.window_size, "checkpoint": args.checkpoint,
           "seed": args.seed}
    dev = pick_device(args.device)
    module, identity = load_model(cfg, dev)
    batch = window_batch(tokens, [0], args.window_size)
    embed_windows(module, batch, False, dev)  # warm-up
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        out = embed_windows(module, batch, not args.no_reverse_complement, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / reps
    info = describe_window(seq, args.window_size, args.heads, args.dim)
    passes = 1 if args.no_reverse_complement else 2
    print(f"window: {info['length']} bp of sequence in a {args.window_size} bp window "
          f"({args.window_size - info['length']} padded), {args.heads} heads x head dim {args.dim // args.heads}")
    print(f"attention FLOPs: {info['attention_flops'] * passes / 1e6:.1f} MFLOP "
          f"(QK^T + PV, {passes} pass{'es' if passes > 1 else ''})")
    print(f"score memory: tiled {info['tiled_score_bytes'] / 1024:.0f} KiB per block of 128 queries "
          f"vs full matrix {info['full_score_bytes'] / 1024:.0f} KiB")
    print(f"time: {dt * 1e3:.2f} ms per window on {dev} (kernel backend {resolve(None, dev)}; "
          f"mean of {reps}); output {tuple(out.shape)}; weights {identity['weights']}")
    return 0
