"""One level's jobs outside Snakemake: `genoattn hic|level1..level6|genotypes --config CONFIG ...`.

The jobs come from the job specification (:mod:`genoattn.jobs`), which the Snakemake rules read too:
the same inputs, output paths and params, and the same function runs them. Inputs are the
results-layout paths of the level below; a missing one is an error naming the `snakemake` target that
makes it. Also holds the `genoattn level1 --sequence` example (spec: FLOPs, memory, time).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from genoattn import jobs as J
from genoattn.workflow import Layout

#: command -> the rules it runs, in order, and whether each rule's output is what the command is for
#: (``--out`` may replace it) or an intermediate (genotype pieces, level-6 shards before the gather).
COMMANDS = {
    "level1": [("level1_contig", True)],
    "level2": [("level2_contig", True)],
    "level3": [("level3_contig", True)],
    "hic": [("hic_graph", True), ("hic_trans", True)],
    "level4": [("level4_contig", True)],
    "level5": [("level5_genome", True)],
    "genotypes": [("genotypes_part", False), ("genotypes_cohort", True), ("ld_blocks", True)],
    "level6": [("level6_shard", False), ("level6_gather", True)],
    "impute": [("impute_cohort", True)],
    "effects": [("effects_reference", True)],
}


@dataclass
class CliJob:
    job: J.Job
    final: bool

    @property
    def output(self) -> str:
        return self.job.output


class Context:
    def __init__(self, config: dict, config_path: str):
        self.config = config
        self.config_path = config_path
        self.L = Layout(config)

    def reference(self, name: str | None, need: str | None = None, what: str = "") -> str:
        refs = self.L.references
        if not refs:
            raise ValueError(f"{self.config_path} has no `references`")
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

    def contig(self, reference: str, contig: str | None) -> None:
        selected = self.L.contigs(reference)
        if contig is not None and contig not in selected:
            more = " ..." if len(selected) > 20 else ""
            raise ValueError(f"--contig {contig!r} is not a selected contig of references.{reference} "
                             f"(include/exclude select: {', '.join(selected[:20])}{more})")


NEEDS = {"level2": ("annotation", "level 2"), "level3": ("annotation", "level 3"), "hic": ("hic", "the Hi-C graph"),
         "level4": ("hic", "level 4"), "level5": ("hic", "level 5")}


def build_jobs(command: str, ctx: Context, reference: str | None = None, cohort: str | None = None,
               contig: str | None = None, step: str = "all", shard: int | None = None, gather: bool = False,
               **_) -> list[CliJob]:
    """The jobs of ``command`` for the selection, in the order they must run."""
    wanted: dict[str, str] = {}
    rules = list(COMMANDS[command])
    if command == "genotypes":
        wanted["cohort"] = ctx.cohort(cohort)
        if step != "all":
            keep = {"genotypes": ("genotypes_part", "genotypes_cohort"), "ld_blocks": ("ld_blocks",)}[step]
            rules = [(r, f) for r, f in rules if r in keep]
    elif command == "impute":
        wanted["cohort"] = ctx.cohort(cohort)
    elif command == "effects":
        r = wanted["reference"] = ctx.reference(reference)
        if not ctx.L.ref(r)["variants"]:
            raise ValueError(f"references.{r} has no `variants` in {ctx.config_path}: give --vcf or set it")
    elif command == "level6":
        c = wanted["cohort"] = ctx.cohort(cohort)
        n = ctx.L.shard_count(c)
        if shard is not None:
            if not 0 <= shard < n:
                raise ValueError(f"--shard {shard}: cohort {c} has {n} shard(s) (0..{n - 1}) of "
                                 f"levels.level6.samples_per_shard={ctx.L.level('level6')['samples_per_shard']}")
            wanted["shard"] = str(shard)
            rules = [("level6_shard", True)]
        elif gather:
            rules = [("level6_gather", True)]
    else:
        need, what = NEEDS.get(command, (None, ""))
        r = wanted["reference"] = ctx.reference(reference, need, what)
        if command == "hic" and contig == "trans":
            rules = [("hic_trans", True)]
        elif contig is not None:
            ctx.contig(r, contig)
            wanted["contig"] = contig
            rules = [(rule, f) for rule, f in rules if rule != "hic_trans"]
    out = []
    for rule, final in rules:
        spec = J.spec(rule)
        for w in spec.expand(ctx.L):
            if all(w.get(k, v) == v for k, v in wanted.items()):
                out.append(CliJob(spec.job(ctx.L, w), final))
    return out


def missing_input_message(path: str, target: str, config_path: str) -> str:
    return (f"input {path} does not exist: make it first with `snakemake --configfile {config_path} {target}` "
            f"(or `snakemake --configfile {config_path} {path}` for this file only)")


def _paths(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_inputs(jobs: list[CliJob], ctx: Context) -> None:
    """Every input that no earlier job of the list makes must exist (checked before anything runs)."""
    made: set[str] = set()
    for cj in jobs:
        for value in cj.job.inputs.values():
            for path in _paths(value):
                if path not in made and not os.path.exists(path):
                    target = J.producer(ctx.L, path)
                    if target is None:
                        raise FileNotFoundError(f"input {path} does not exist (named in {ctx.config_path})")
                    raise FileNotFoundError(missing_input_message(path, target, ctx.config_path))
        made.add(cj.output)


def run_jobs(jobs: list[CliJob], ctx: Context, out: str | None = None, threads: int | None = None,
             log=print) -> list[str]:
    """Run the jobs in order (``out`` replaces the single final job's output); return the outputs."""
    from genoattn.kernels.dispatch import configure

    if out is not None:
        finals = [j for j in jobs if j.final]
        if len(finals) != 1:
            raise ValueError(f"--out names one store but this command writes {len(finals)} "
                             f"({', '.join(j.output for j in finals[:4])}{' ...' if len(finals) > 4 else ''}): "
                             "pick one with --contig (or --shard / --step), or leave --out out")
        finals[0].job.output = out
    check_inputs(jobs, ctx)
    done = []
    for cj in jobs:
        t0 = time.time()
        if "kernels" in cj.job.config:
            configure(cj.job.config["kernels"])
        if threads:
            cj.job.threads = threads
        J.run_job(cj.job)
        log(f"{cj.job.name}: wrote {cj.output} ({time.time() - t0:.1f} s)")
        done.append(cj.output)
    return done


def run_level(level: str, config_path: str, out: str | None = None, threads: int | None = None,
              log=print, **selection) -> list[str]:
    """Load and validate ``config_path`` (as the workflow does), build the level's jobs, run them."""
    from genoattn.config import load_config
    from genoattn.runtime import set_threads

    config = load_config(config_path)
    vcf = selection.pop("vcf", None)
    if vcf:  # `genoattn effects --vcf`: the variants of this run
        r = Context(config, config_path).reference(selection.get("reference"))
        config["references"][r]["variants"] = vcf
    set_threads(threads)
    ctx = Context(config, config_path)
    return run_jobs(build_jobs(level, ctx, **selection), ctx, out=out, threads=threads, log=log)


def train_level(level: str, config_path: str, reference: str | None = None, cohort: str | None = None,
                out: str | None = None, devices: int | None = None, threads: int | None = None,
                overrides: dict | None = None, log=print) -> dict:
    """Rule train_<level> for one reference (levels 1-2) or cohort (level 6), with ``overrides`` of
    training.<level> (the CLI's --steps ...)."""
    import json
    from pathlib import Path

    from genoattn.config import load_config
    from genoattn.runtime import set_threads

    config = load_config(config_path)
    config["training"][level].update(overrides or {})
    if devices is not None:
        config["training"]["devices"] = devices
    set_threads(threads)
    ctx = Context(config, config_path)
    if level == "level6":
        if cohort is None:
            trained = [c for c in ctx.L.cohorts if config["cohorts"][c]["held_out"]]
            cohort = trained[0] if len(trained) == 1 else None
        c = ctx.cohort(cohort)
        if not config["cohorts"][c]["held_out"]:
            raise ValueError(f"cohorts.{c}.held_out is not set in {config_path}: training needs held-out "
                             "individuals to measure on. Fix: set it (validation_samples, test_cohort; see "
                             "config/README.md)")
        wildcards = {"cohort": c}
    else:
        needs = {"level2": "annotation", "level4": "hic", "level5": "hic"}.get(level)
        r = ctx.reference(reference, needs, f"{level} training")
        if not ctx.L.ref(r)["held_out"]:
            raise ValueError(f"references.{r}.held_out is not set in {config_path}: training needs held-out "
                             "contigs (test, validation) to measure on. Fix: set it (see config/README.md)")
        if level == "level5" and not ctx.L.ref(r)["centromeres"]:
            raise ValueError(f"references.{r}.centromeres is not set in {config_path}: level-5 training needs one "
                             "centromere per contig (its position baseline). Fix: set it to a BED (see "
                             "config/README.md)")
        wildcards = {"reference": r}
    job = J.spec(f"train_{level}").job(ctx.L, wildcards)
    if out is not None:
        job.output = str(Path(out) / "model.safetensors")
    run_jobs([CliJob(job, True)], ctx, threads=threads, log=log)
    result = json.loads(Path(job.output).with_name("model.json").read_text())
    result["model"] = job.output
    return result


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
