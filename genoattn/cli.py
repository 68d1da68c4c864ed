"""`genoattn ...`: thin wrappers around the api, for use outside Snakemake."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_check_config(args) -> int:
    from genoattn.config import load_config

    cfg = load_config(args.config, check_files=not args.no_files)
    print(f"{args.config}: valid ({len(cfg['references'])} reference(s), {len(cfg.get('cohorts', {}))} cohort(s))")
    if args.show:
        print(json.dumps(cfg, indent=2))
    return 0


def _cmd_check(args) -> int:
    from genoattn.checks import preflight
    from genoattn.config import load_config

    found = preflight(load_config(args.config), raise_on_error=False)
    for f in found:
        print(f"{'ok   ' if f.ok else 'ERROR'} {f.key}: {f.message}")
    return 0 if all(f.ok for f in found) else 1


def _cmd_tokenize(args) -> int:
    from genoattn.levels import tokenize

    aliases = dict(a.split("=", 1) for a in args.alias)
    tokenize.run(args.fasta, args.out, {"contig_aliases": aliases, "include": args.include or [".*"],
                                        "exclude": args.exclude or []}, chunk_size=args.chunk_size)
    return 0


def _cmd_level1(args) -> int:
    if args.sequence is not None:
        from genoattn.cli_jobs import level1_example
        return level1_example(args)
    if args.config:
        return _cmd_level(args)
    if not (args.tokens and args.contig and args.out):
        print("genoattn level1: give --sequence, --config, or --tokens, --contig and --out", file=sys.stderr)
        return 2
    from genoattn.config import validate_config
    from genoattn.levels import level1

    cfg = validate_config({"references": {"x": {"fasta": "-"}}, "levels": {"level1": {
        "window": args.window_size, "stride": args.stride or args.window_size, "heads": args.heads, "dim": args.dim,
        "reverse_complement": not args.no_reverse_complement, "checkpoint": args.checkpoint, "seed": args.seed}}},
        check_files=False)["levels"]["level1"]
    level1.run(args.tokens, args.contig, args.out, cfg, annotation_path=args.annotation, device=args.device)
    return 0


def _cmd_level(args) -> int:
    """One level's jobs from a workflow config (genoattn.cli_jobs), as the rules run them."""
    from genoattn.cli_jobs import run_level
    from genoattn.runtime import setup_logging

    setup_logging(None)
    selection = {k: getattr(args, k) for k in ("reference", "cohort", "contig", "step", "shard", "gather", "vcf")
                 if getattr(args, k, None) is not None}
    run_level(args.level, args.config, out=args.out, threads=args.threads, **selection)
    return 0


# name -> (selects reference or cohort, per-contig, help); each runs what `snakemake <name>` runs, one job at a time
LEVELS = {
    "hic": ("reference", True, "Hi-C contact graph per contig, then trans.zarr (--contig trans: trans.zarr only)"),
    "level2": ("reference", True, "codon attention per contig (reads annotation.parquet, level1)"),
    "level3": ("reference", True, "exon/gene attention per contig (reads annotation.parquet, level1, level2)"),
    "level4": ("reference", True, "graph attention over the Hi-C graph per contig (reads hic, level1[, level3])"),
    "level5": ("reference", False, "genome-wide block-sparse attention (reads every level4 store, hic/trans.zarr)"),
    "genotypes": ("cohort", False, "VCF/BCF -> genotypes.zarr, then ld_blocks.zarr"),
    "level6": ("cohort", False, "per-individual attention: every shard then the gather, one --shard, or --gather"),
    "effects": ("reference", False, "each variant of references.<name>.variants (or --vcf): consequence, level-1 "
                                    "LLR, change of every level's embedding (reads tokens, annotation, levels 1-5 "
                                    "and their checkpoints) -> effects/variants.parquet (--out) + variants.vcf.gz beside it"),
    "impute": ("cohort", False, "fill the cohort's missing calls with the trained level 6 (reads genotypes, "
                                "ld_blocks, levels.level6.checkpoint + its head) -> imputed.vcf.gz (--out) + "
                                "imputed.zarr beside it"),
}


def _add_config_args(p, level: str, select: str, per_contig: bool) -> None:
    """--config/--reference|--cohort/--contig/--out/--threads of a config-driven level command."""
    g = p.add_argument_group("from a workflow config (the rule's inputs, params and output paths)")
    g.add_argument("--config", required=level != "level1", help="workflow config (validated like the Snakefile)")
    g.add_argument(f"--{select}", help=f"name in the config's {select}s (default: the only one)")
    if per_contig and level != "level1":
        g.add_argument("--contig", help="one selected contig (default: every selected contig, one after the other)")
    if level != "level1":
        g.add_argument("--out", help="store to write (default: the results-layout path the rule writes)")
    g.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.set_defaults(level=level)


def _cmd_annotate(args) -> int:
    from genoattn.io.annotation import build_annotation

    bad = [a for a in args.alias if "=" not in a or not a.split("=", 1)[0] or not a.split("=", 1)[1]]
    if bad:
        print(f"genoattn annotate: --alias {bad[0]!r}: expected NAME=REF. Fix: write it as the name in the file, '=', "
              "the reference's name (e.g. --alias NC_001133.9=chrI)", file=sys.stderr)
        return 2
    aliases = dict(a.split("=", 1) for a in args.alias)
    meta = build_annotation(args.annotation, args.fasta, args.out, contig_aliases=aliases,
                            chr_prefix=args.chr_prefix)
    info = meta["genoattn_annotation"]
    rows = ", ".join(f"{n:,} {f}" for f, n in info["rows"].items())
    print(f"{args.out}: {rows} ({meta['format']}; {info['unmapped_rows']:,} rows on contigs not in the FASTA)")
    return 0


def _cmd_train(args) -> int:
    """The training job of a level (rule train_<level> of the job specification), outside Snakemake."""
    from genoattn.cli_jobs import train_level
    from genoattn.runtime import setup_logging

    setup_logging(None)
    overrides = {k: getattr(args, k) for k in ("steps", "batch", "lr") if getattr(args, k) is not None}
    result = train_level(args.level, args.config, reference=args.reference, cohort=args.cohort, out=args.out,
                         devices=args.devices, threads=args.threads, overrides=overrides)
    test = result.get("metrics", {}).get("test", {})
    print(f"{args.level}: {result.get('steps')} steps in {result.get('seconds')} s; held-out test "
          + ", ".join(f"{k} {v}" for k, v in test.items() if k in ("perplexity", "accuracy", "dosage_r2",
                                                                   "concordance", "spearman", "auroc_top"))
          + f". Wrote {result.get('model')} (use it with levels.{args.level}.checkpoint)")
    return 0


def _cmd_info(args) -> int:
    import xarray as xr

    print(xr.open_zarr(args.store, group=args.group))
    return 0


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genoattn", description=__doc__)
    from genoattn import __version__
    p.add_argument("--version", action="version", version=f"genoattn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-config", help="validate a workflow config (the same check the Snakefile runs)")
    c.add_argument("config")
    c.add_argument("--no-files", action="store_true", help="do not check that input files exist")
    c.add_argument("--show", action="store_true", help="print the config with defaults filled in")
    c.set_defaults(func=_cmd_check_config)

    k = sub.add_parser("check", help="pre-flight: every input of a config checked against its reference")
    k.add_argument("config")
    k.set_defaults(func=_cmd_check)

    t = sub.add_parser("tokenize", help="FASTA -> tokens.zarr (level 0)")
    t.add_argument("--fasta", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--alias", action="append", default=[], metavar="FASTA_NAME=NAME")
    t.add_argument("--include", action="append", help="regex of contigs to keep (repeatable)")
    t.add_argument("--exclude", action="append", help="regex of contigs to drop (repeatable)")
    t.add_argument("--chunk-size", type=_at_least(1024), default=1 << 20,
                   help="bases per read/write step and zarr chunk (>= 1024; levels.tokenize.chunk_size)")
    t.set_defaults(func=_cmd_tokenize)

    l1 = sub.add_parser("level1", help="nucleotide attention: one --sequence window, a contig of tokens.zarr, "
                                       "or the jobs of a --config")
    l1.add_argument("--sequence", help="run one window of this sequence and print FLOPs, memory and time")
    l1.add_argument("--tokens", help="tokens.zarr")
    l1.add_argument("--contig")
    l1.add_argument("--out")
    l1.add_argument("--annotation", help="annotation.parquet (per-base embeddings of exon bases)")
    l1.add_argument("--window-size", type=int, default=512)
    l1.add_argument("--stride", type=int)
    l1.add_argument("--heads", type=int, default=8)
    l1.add_argument("--dim", type=int, default=128)
    l1.add_argument("--no-reverse-complement", action="store_true")
    l1.add_argument("--checkpoint")
    l1.add_argument("--seed", type=int, default=0)
    l1.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    l1.set_defaults(func=_cmd_level1)
    _add_config_args(l1, "level1", "reference", True)

    for name, (select, per_contig, text) in LEVELS.items():
        lp = sub.add_parser(name, help=text, description=f"{text}. Runs the jobs of `snakemake {name}` one after "
                            "the other, with the rule's inputs (which must exist), params and output paths.")
        _add_config_args(lp, name, select, per_contig)
        if name == "genotypes":
            lp.add_argument("--step", choices=["all", "genotypes", "ld_blocks"], default="all")
        if name == "level6":
            lp.add_argument("--shard", type=int, help="run this shard only (results/{cohort}/level6_shards/K.zarr)")
            lp.add_argument("--gather", action="store_true", help="only gather the existing shards")
        if name == "effects":
            lp.add_argument("--vcf", help="the variants (VCF/BCF) instead of references.<name>.variants")
        lp.set_defaults(func=_cmd_level)

    a = sub.add_parser("annotate", help="GTF/GFF3 -> annotation.parquet (the annotation table)")
    a.add_argument("--annotation", required=True, help="GTF or GFF3, plain, gzip or bgzip")
    a.add_argument("--fasta", required=True, help="reference FASTA (contig names and lengths)")
    a.add_argument("--out", required=True, help="annotation.parquet to write")
    a.add_argument("--alias", action="append", default=[], metavar="NAME=REF",
                   help="contig alias: NAME (in the FASTA or the annotation) is reference contig REF (repeatable)")
    a.add_argument("--chr-prefix", default="auto", choices=["auto", "exact"],
                   help="auto: 'chrI' and 'I' (chrM, M, MT) match each other; exact: only as written (after --alias)")
    a.set_defaults(func=_cmd_annotate)

    tr = sub.add_parser("train", help="the training job of a level (what `snakemake train` runs), outside Snakemake",
                        description="Train a level on its self-supervised objective with the config's training."
                        "<level> options and the reference's held_out contigs (level 6: the cohort's held_out "
                        "individuals), and write model.safetensors + model.json (results/{reference or cohort}/"
                        "train/<level>/, or --out). A rerun after a kill resumes.")
    from genoattn.config import TRAINABLE_LEVELS

    tr.add_argument("level", choices=list(TRAINABLE_LEVELS))
    tr.add_argument("--config", required=True, help="workflow config (validated like the workflow)")
    tr.add_argument("--reference", help="levels 1-5: name in the config's references (default: the only one)")
    tr.add_argument("--cohort", help="level 6: name in the config's cohorts (default: the only one with held_out)")
    tr.add_argument("--out", help="directory to write model.safetensors, model.json, log.tsv (and state.pt "
                    "while training) into (default: results/{reference}/train/<level>/)")
    tr.add_argument("--steps", type=int, help="replace training.<level>.steps")
    tr.add_argument("--batch", type=int, help="replace training.<level>.batch")
    tr.add_argument("--lr", type=float, help="replace training.<level>.lr")
    tr.add_argument("--devices", type=int, help="replace training.devices (processes, torchrun)")
    tr.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")
    tr.set_defaults(func=_cmd_train)

    i = sub.add_parser("info", help="print a store as xarray sees it")
    i.add_argument("store")
    i.add_argument("--group")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"genoattn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # permission denied, disk full, ...: name the file and what to do
        import errno

        fix = {errno.ENOSPC: "free disk space, or point the output (`results`, --out) at a larger disk; the "
                             "unfinished output was removed, rerun the same command",
               errno.EACCES: "check the permissions of that path, or write elsewhere (--out, `results`)",
               errno.EROFS: "write elsewhere (--out, `results`): that file system is read-only"}
        print(f"genoattn {args.command}: error: {exc}. Fix: {fix.get(exc.errno, 'check that path')}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
