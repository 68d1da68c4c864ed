"""`genoattn ...`: thin wrappers around the api, for use outside Snakemake."""

from __future__ import annotations

import argparse
import json
import sys
import time


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
        return _level1_example(args)
    if not (args.tokens and args.contig and args.out):
        print("genoattn level1: give --sequence, or --tokens, --contig and --out", file=sys.stderr)
        return 2
    from genoattn.config import validate_config
    from genoattn.levels import level1

    cfg = validate_config({"references": {"x": {"fasta": "-"}}, "levels": {"level1": {
        "window": args.window_size, "stride": args.stride or args.window_size, "heads": args.heads, "dim": args.dim,
        "reverse_complement": not args.no_reverse_complement, "checkpoint": args.checkpoint, "seed": args.seed}}},
        check_files=False)["levels"]["level1"]
    level1.run(args.tokens, args.contig, args.out, cfg, annotation_path=args.annotation, device=args.device)
    return 0


def _level1_example(args) -> int:
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


def _cmd_annotate(args) -> int:
    from genoattn.io.annotation import build_annotation

    bad = [a for a in args.alias if "=" not in a or not a.split("=", 1)[0] or not a.split("=", 1)[1]]
    if bad:
        print(f"genoattn annotate: --alias {bad[0]!r}: expected NAME=REF (e.g. NC_001133.9=chrI)", file=sys.stderr)
        return 2
    aliases = dict(a.split("=", 1) for a in args.alias)
    meta = build_annotation(args.annotation, args.fasta, args.out, contig_aliases=aliases,
                            chr_prefix=args.chr_prefix)
    info = meta["genoattn_annotation"]
    rows = ", ".join(f"{n:,} {f}" for f, n in info["rows"].items())
    print(f"{args.out}: {rows} ({meta['format']}; {info['unmapped_rows']:,} rows on contigs not in the FASTA)")
    return 0


def _cmd_info(args) -> int:
    import xarray as xr

    print(xr.open_zarr(args.store, group=args.group))
    return 0


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
    t.add_argument("--chunk-size", type=int, default=1 << 20)
    t.set_defaults(func=_cmd_tokenize)

    l1 = sub.add_parser("level1", help="nucleotide attention: one --sequence window, or a contig of tokens.zarr")
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

    a = sub.add_parser("annotate", help="GTF/GFF3 -> annotation.parquet (the annotation table)")
    a.add_argument("--annotation", required=True, help="GTF or GFF3, plain, gzip or bgzip")
    a.add_argument("--fasta", required=True, help="reference FASTA (contig names and lengths)")
    a.add_argument("--out", required=True, help="annotation.parquet to write")
    a.add_argument("--alias", action="append", default=[], metavar="NAME=REF",
                   help="contig alias: NAME (in the FASTA or the annotation) is reference contig REF (repeatable)")
    a.add_argument("--chr-prefix", default="auto", choices=["auto", "exact"],
                   help="auto: 'chrI' and 'I' (chrM, M, MT) match each other; exact: only as written (after --alias)")
    a.set_defaults(func=_cmd_annotate)

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


if __name__ == "__main__":
    sys.exit(main())
