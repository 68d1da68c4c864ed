"""Hi-C graph build benchmark on a SYNTHETIC genome-scale cooler (made here, not real data).

    OMP_NUM_THREADS=1 python benchmarks/hic_graph.py [--bins 300000] [--band 300] [--far 150] \
        [--chunk-pixels 5000000] [--workdir /tmp/genoattn_hic_bench] [--json out.json]

1. Makes ``synthetic.cool`` with ``cooler.create_cooler`` (row blocks, never the whole matrix):
   ``--bins`` 10 kb bins over 23 chromosomes with the relative sizes of GRCh38 chr1..22+X,
   human-like distance decay (contact probability ~ d^-1.08): per bin, Poisson counts to every
   bin within ``--band`` bins (zeros dropped), ``--far`` sampled long-range cis partners (distance
   log-uniform up to the chromosome end), 8 trans partners; synthetic balancing weights
   (log-normal, 1 % NaN bins). It is reused when it already exists with the same parameters.
2. In a fresh process per measurement (peak RSS = ru_maxrss of that process): the per-contig graph
   (``genoattn.hic.run_contig``, as the ``hic_graph`` rule, reference lengths taken from the cooler and
   the input sha256 timed once apart) of the largest chromosome, and of all
   chromosomes in sequence (the sum of the per-contig jobs), and the genome-wide trans links
   (``genoattn.hic.run_trans``). pixels/s counts every pixel read from the cooler (both passes
   read the rows of the contig once each, so a pixel counts once), edges/s the directed CSR edges.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import run_meta

ROOT = Path(__file__).resolve().parents[1]
# GRCh38 chr1..chr22, chrX lengths (Mb), for relative chromosome sizes only
HUMAN_MB = [248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80, 135.09, 133.28,
            114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71, 50.82, 156.04]
RES = 10_000


def make_cooler(path: Path, nbins: int, band: int, far: int, seed: int = 0) -> dict:
    import cooler
    import pandas as pd

    rng = np.random.default_rng(seed)
    rel = np.array(HUMAN_MB) / sum(HUMAN_MB)
    sizes = np.maximum((rel * nbins).astype(np.int64), band + 2)
    names = [f"chr{i}" for i in range(1, 23)] + ["chrX"]
    chromsizes = pd.Series(sizes * RES, index=names)
    bins = cooler.binnify(chromsizes, RES)
    n = len(bins)
    w = rng.lognormal(0.0, 0.2, n) / 10.0
    w[rng.random(n) < 0.01] = np.nan
    bins["weight"] = w
    offs = np.r_[0, np.cumsum(sizes)]
    chrom_of = np.repeat(np.arange(len(sizes)), sizes)
    hi_of = offs[chrom_of + 1]
    n_pix = [0]

    def blocks(rows=2000):
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            i = np.arange(r0, r1)
            # dense band with decay
            d = np.arange(0, band + 1)
            lam = 400.0 * (d + 1.0) ** -1.08
            bi = np.repeat(i, band + 1)
            bd = np.tile(d, len(i))
            bj = bi + bd
            cnt = rng.poisson(np.tile(lam, len(i)))
            ok = (bj < hi_of[bi]) & (cnt > 0)
            b1, b2, c = [bi[ok]], [bj[ok]], [cnt[ok]]
            # long-range cis, distance log-uniform
            fi = np.repeat(i, far)
            span = np.maximum(hi_of[fi] - fi - 1, 1)
            fd = np.exp(rng.uniform(np.log(band + 1), np.log(np.maximum(span, band + 2)))).astype(np.int64)
            fj = fi + fd
            ok = fj < hi_of[fi]
            b1.append(fi[ok]); b2.append(fj[ok]); c.append(1 + rng.poisson(0.3, ok.sum()))
            # trans partners in later chromosomes
            ti = np.repeat(i, 8)
            tj = rng.integers(0, n, len(ti))
            ok = tj >= hi_of[ti]
            b1.append(ti[ok]); b2.append(tj[ok]); c.append(np.ones(ok.sum(), np.int64))
            b1, b2, c = np.concatenate(b1), np.concatenate(b2), np.concatenate(c)
            key, inv = np.unique(b1 * n + b2, return_inverse=True)
            cnt = np.bincount(inv, c).astype(np.int32)
            n_pix[0] += len(key)
            yield pd.DataFrame({"bin1_id": key // n, "bin2_id": key % n, "count": cnt})

    t = time.time()
    cooler.create_cooler(str(path), bins, blocks(), ordered=True, dtypes={"count": np.int32},
                         symmetric_upper=True, assembly="synthetic")
    return {"seconds": time.time() - t, "n_bins": int(n), "nnz": int(cooler.Cooler(str(path)).info["nnz"]),
            "largest_chrom_bins": int(sizes.max()), "n_chroms": len(sizes)}


CHILD = r"""
import json, sys, time, logging
from genoattn import hic
def hwm():  # peak RSS of this process (VmHWM; ru_maxrss would carry the parent's peak across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
args = json.loads(sys.argv[1])
# The synthetic cooler has no FASTA: reference lengths = the cooler's chromosome sizes, and the sha256
# of the inputs (a property of the store contract, not of the graph code) is measured separately.
import cooler, genoattn.io.hic as ioh, genoattn.io.store as st
sizes = {k: int(v) for k, v in cooler.Cooler(args["cool"]).chromsizes.items()}
ioh.reference_lengths = lambda fasta, aliases=None: dict(sizes)
st.input_checksums = lambda paths: {}
rss0 = hwm()
from genoattn.config import defaults
ref = dict(defaults("reference"), fasta="synthetic (no FASTA)", hic=args["cool"], hic_balance="weight")
cfg = dict(defaults("levels.hic"), chunk_pixels=args["chunk_pixels"])
t = time.time()
c0 = time.process_time()
out = {"pixels": 0, "edges": 0, "top": 0}
if args["what"] == "trans":
    a = hic.run_trans(ref, args["contigs"], args["out"] + "/trans.zarr", cfg)
    out["pixels"] = a["stats"]["n_pixels_read"]; out["edges"] = a["n_links"]
else:
    for c in args["contigs"]:
        a = hic.run_contig(ref, c, args["out"] + f"/{c}.zarr", cfg)
        out["pixels"] += a["stats"]["n_pixels_read"]; out["edges"] += a["n_edges"]; out["top"] += a["stats"]["n_top_edges"]
        out["build_seconds"] = out.get("build_seconds", 0.0) + sum(a["stats"]["seconds"].values())
out["seconds"] = time.time() - t
out["cpu_seconds"] = time.process_time() - c0  # the machine is shared: CPU time is the fairer measure
out["peak_rss_mb"] = hwm()
out["baseline_rss_mb"] = rss0
print(json.dumps(out))
"""


def run_child(**args) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=300_000)
    ap.add_argument("--band", type=int, default=300, help="dense band width in bins (3 Mb at 10 kb)")
    ap.add_argument("--far", type=int, default=150, help="sampled long-range cis partners per bin")
    ap.add_argument("--chunk-pixels", type=int, default=5_000_000)
    ap.add_argument("--workdir", default="/tmp/genoattn_hic_bench")
    ap.add_argument("--skip-all", action="store_true", help="only the largest chromosome (no all-chromosome run, no trans)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    begun = run_meta.begin()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"b{a.bins}_band{a.band}_far{a.far}"
    cool = work / f"synthetic_{tag}.cool"
    meta_path = work / f"synthetic_{tag}.json"
    if cool.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        cool.unlink(missing_ok=True)
        meta = make_cooler(cool, a.bins, a.band, a.far)
        meta_path.write_text(json.dumps(meta))
    print(f"synthetic cooler: {meta}", flush=True)
    import cooler
    from genoattn.io.store import sha256_file
    import tempfile
    with tempfile.TemporaryDirectory() as empty_cache:  # hash for real, not a hit in the checksum cache
        before = os.environ.get("GENOATTN_CACHE_DIR")
        os.environ["GENOATTN_CACHE_DIR"] = empty_cache
        t = time.time()
        sha256_file(cool)
        sha = {"seconds": time.time() - t, "bytes": cool.stat().st_size}
        if before is None:
            del os.environ["GENOATTN_CACHE_DIR"]
        else:
            os.environ["GENOATTN_CACHE_DIR"] = before
    print(f"sha256 of the cooler (once per input per machine: later jobs hit the checksum cache): {sha}", flush=True)
    clr = cooler.Cooler(str(cool))
    names = list(clr.chromnames)
    out = work / "out"
    out.mkdir(exist_ok=True)
    res = {"cooler": meta, "chunk_pixels": a.chunk_pixels, "sha256_cooler": sha}
    common = dict(cool=str(cool), chunk_pixels=a.chunk_pixels, out=str(out))
    r = run_child(what="graph", contigs=[names[0]], **common)
    res["largest_chromosome"] = r
    print(f"graph {names[0]}: {r}", flush=True)
    if not a.skip_all:
        r = run_child(what="graph", contigs=names, **common)
        res["all_chromosomes"] = r
        print(f"graph all: {r}", flush=True)
    if not a.skip_all:
        r = run_child(what="trans", contigs=names, **common)
        res["trans"] = r
        print(f"trans: {r}", flush=True)
    for k in ("largest_chromosome", "all_chromosomes", "trans"):
        if k in res:
            r = res[k]
            r["pixels_per_s"] = r["pixels"] / r["seconds"]
            r["edges_per_s"] = r["edges"] / r["seconds"]
            r["pixels_per_cpu_s"] = r["pixels"] / r["cpu_seconds"]
            r["edges_per_cpu_s"] = r["edges"] / r["cpu_seconds"]
            if "build_seconds" in r:  # graph code only (no cooler open / checksums / zarr write)
                r["build_pixels_per_s"] = r["pixels"] / r["build_seconds"]
                r["build_edges_per_s"] = r["edges"] / r["build_seconds"]
    res["meta"] = run_meta.meta(begun, threads=1 if os.environ.get("OMP_NUM_THREADS") == "1" else None)
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
