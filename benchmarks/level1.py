"""Level-0/1 CPU benchmark: throughput and peak memory.

    python benchmarks/level1.py [--windows 512] [--threads 2] [--json benchmarks/results/level1_cpu.json]

1. Throughput of the level-1 module with the schema's defaults (``levels.level1``: dim, heads, window,
   attention blocks, convolution; seeded weights, which do not change the compute) on windows of the
   real yeast genome: our CPU attention path vs a naive attention that materialises the full score
   matrix (the reference backend), with and without the reverse-complement pass.
2. Peak resident memory (each run in its own process): tokenizing one contig vs the whole demo
   genome, and level 1 on the smallest vs the largest demo contig. Streaming means the peak must
   not grow with the amount of sequence.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run_meta

ROOT = Path(__file__).resolve().parents[1]
FASTA = ROOT / "data/demo/yeast_R64/S288C_R64-2-1.fa.gz"


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return its JSON line plus its peak RSS."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# VmHWM (peak RSS of this address space) resets at exec; ru_maxrss would carry over the peak of the
# parent that forked the child.
PEAK = ("import json, re; peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())"
        ".group(1)) / 1024")


def throughput(n_windows: int, threads: int) -> list[dict]:
    import numpy as np
    import torch

    from genoattn.config import defaults
    from genoattn.levels.level1 import embed_windows, load_model, window_batch
    from genoattn.levels import tokenize

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        tokenize.run(str(FASTA), f"{tmp}/t.zarr", dict(defaults("reference"), include=["chrIV"]))
        import zarr
        tokens = np.asarray(zarr.open_group(f"{tmp}/t.zarr", mode="r")["chrIV/tokens"][: n_windows * 512])
    cfg = dict(defaults("levels.level1"), checkpoint=None)
    batch = window_batch(tokens, np.arange(n_windows) * cfg["window"], cfg["window"])
    module, _ = load_model(cfg, torch.device("cpu"))
    rows = []
    for backend in ("cpu", "reference"):
        for rc in (False, True):
            os.environ["GENOATTN_KERNEL_BACKEND"] = backend
            embed_windows(module, batch[:8], rc, "cpu")  # warm-up
            t0 = time.perf_counter()
            for s in range(0, n_windows, 64):
                embed_windows(module, batch[s:s + 64], rc, "cpu")
            dt = time.perf_counter() - t0
            rows.append({"path": "ours (cpu, tiled)" if backend == "cpu" else "naive (full score matrix)",
                         "reverse_complement": rc, "windows": n_windows, "seconds": round(dt, 3),
                         "windows_per_s": round(n_windows / dt, 1), "bp_per_s": round(n_windows * cfg["window"] / dt),
                         "module": {k: cfg[k] for k in ("dim", "heads", "window", "layers", "conv_kernel")}})
    os.environ.pop("GENOATTN_KERNEL_BACKEND", None)
    return rows


def memory() -> list[dict]:
    rows = []
    tok = ("from genoattn.levels import tokenize; import tempfile\n"
           "from genoattn.config import defaults\n"
           "with tempfile.TemporaryDirectory() as t: tokenize.run({fasta!r}, t + '/x.zarr', dict(defaults('reference'), include={inc!r}))\n"
           + PEAK + "\nprint(json.dumps({{'peak_mb': round(peak, 1)}}))")
    for label, inc in (("tokenize chrI (230 kb)", ["chrI"]), ("tokenize whole genome (12.07 Mbp)", [".*"])):
        t0 = time.perf_counter()
        r = _child(tok.format(fasta=str(FASTA), inc=inc))
        rows.append({"what": label, "peak_rss_mb": r["peak_mb"], "seconds": round(time.perf_counter() - t0, 1)})
    l1 = ("import tempfile, torch; torch.set_num_threads(2)\n"
          "from genoattn.levels import tokenize, level1\n"
          "from genoattn.config import defaults\n"
          "cfg = dict(defaults('levels.level1'), checkpoint=None)\n"
          "with tempfile.TemporaryDirectory() as t:\n"
          "    tokenize.run({fasta!r}, t + '/x.zarr', dict(defaults('reference'), include=[{c!r}]))\n"
          "    level1.run(t + '/x.zarr', {c!r}, t + '/l1.zarr', cfg)\n"
          + PEAK + "\nprint(json.dumps({{'peak_mb': round(peak, 1)}}))")
    for label, c in (("level1 chrI (230 kb, 450 windows)", "chrI"), ("level1 chrIV (1.53 Mbp, 2,993 windows)", "chrIV")):
        t0 = time.perf_counter()
        r = _child(l1.format(fasta=str(FASTA), c=c))
        rows.append({"what": label, "peak_rss_mb": r["peak_mb"], "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/level1_cpu.json"))
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    begun = run_meta.begin()
    thr = throughput(args.windows, args.threads)
    print(f"{'path':28} {'rc':>5} {'windows/s':>10} {'bp/s':>10}")
    for r in thr:
        print(f"{r['path']:28} {str(r['reverse_complement']):>5} {r['windows_per_s']:>10} {r['bp_per_s']:>10}")
    mem = [] if args.skip_memory else memory()
    for r in mem:
        print(f"{r['what']:42} peak RSS {r['peak_rss_mb']:8.1f} MB  ({r['seconds']} s)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": run_meta.meta(begun), "throughput": thr, "memory": mem, "threads": args.threads,
                                           "cpu_count": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
