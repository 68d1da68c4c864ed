"""A human-size run: synthetic GRCh38-size inputs, the genome-wide jobs measured beside the SLURM profile,
and the cluster plan for a human genome and a 500 K-sample cohort.

    python benchmarks/human_scale.py make-inputs WORKDIR [--samples 500] [--variants 1000000] [--seed 0]
    python benchmarks/human_scale.py run WORKDIR --json benchmarks/results/human_scale.json [--only RULE ...]
    python benchmarks/human_scale.py plan [--run benchmarks/results/human_scale.json] \
        [--json benchmarks/results/human_scale.json] [--markdown]

``make-inputs`` writes into WORKDIR (outside the repository; ~1 GB), all SYNTHETIC:

* ``genome.fa.gz`` (+ .fai, .gzi): the 24 GRCh38 primary chromosomes at their real lengths, every base N
  (the Hi-C and genotype jobs read only the contig names and lengths from the FASTA index);
* ``hic_10kb.cool``: a 10 kb cooler made with ``cooler.create_cooler`` on those contigs: Poisson counts with
  P(s) ~ s^-1 times 2.5x inside TAD-like blocks of 0.5-1 Mb, to every bin within ``--band`` bins (3 Mb),
  ``--far`` sampled long-range cis partners per bin (distance log-uniform up to the chromosome end),
  8 trans partners per bin, and a 3 Mb pixel-free "centromere" gap per chromosome; balanced with
  ``cooler.balance_cooler(store=True)`` (column ``weight``; ``--balance-iters`` 30 on an uncompressed scratch
  copy: not converged to cooler's tol, see benchmarks/RESULTS.md ("Human-size run"));
* ``results/<ref>/level1/chr1.zarr``: a level-1 store of chr1's shape (486,243 windows x 128) with random
  embeddings (level 4 only pools ``window_embedding``; this is a memory/time measurement, not biology);
* ``results/<ref>/level4/{contig}.zarr`` for all 24 contigs (random embeddings, 256 dim): what level 5
  reads; ``run`` replaces chr1's with the real level-4 job's output before level 5 runs;
* ``cohort.vcf.gz`` (+ .tbi): ``--variants`` biallelic phased SNVs over the 24 contigs (proportional to
  length) x ``--samples`` samples; genotype rows drawn from a pool of 4,096 rows with allele frequencies
  log-uniform in 0.003-0.5, a record repeating the previous record's row with probability 0.7 (LD runs);
* ``config.yaml``: the workflow config of this run (validated by genoattn.config), CPU kernels; cohorts
  ``synthetic_1m`` and, for level-6 memory against the variant count, the same VCF restricted to chr1-3 and
  chr1-7; ``config_level6.yaml``: the same with ``levels.level6`` samples_per_shard 1, batch_size 1.

``run`` runs each genome-wide job through the job specification (``genoattn.jobs.spec(rule).job`` +
``genoattn.cli_jobs.run_jobs``, as ``genoattn <level> --config`` does), one subprocess per job under
``nice -n 10`` with 2 torch threads, and records its peak RSS and CPU time (``os.wait4`` rusage), wall
time, load average before/after, output size and file count, and the SLURM profile's ``mem_mb`` /
``runtime`` for the rule at attempt 1 (OK when mem_mb >= 1.5 x the measured peak). A watchdog kills a job
whose RSS passes ``--mem-limit`` (16,000 MB: the machine is shared), recorded as a lower-bound peak.

``plan`` prints (and writes) the cluster plan: per rule the jobs, CPU core-hours extrapolated from the
project's measured CPU throughputs (benchmarks/results/*.json), the GPU-hours the profile books
(jobs x runtime), storage scaled from measured store sizes, and zarr files per store from the chunking the
writers use, flagging stores past ~10,000 files (zarr v3 sharding). Every number says where it comes from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF = "grch38_synthetic"
COHORT = "synthetic_1m"
SUB_COHORTS = {"synthetic_chr1_3": ["chr1", "chr2", "chr3"], "synthetic_chr1_7": [f"chr{i}" for i in range(1, 8)]}
RES = 10_000
# GRCh38.p14 primary assembly (GCA_000001405.29), chromosome lengths in bp; the patches of .p14 do not
# change the primary chromosomes, so these equal GRCh38's (UCSC hg38.chrom.sizes).
GRCH38 = {
    "chr1": 248956422, "chr2": 242193529, "chr3": 198295559, "chr4": 190214555, "chr5": 181538259,
    "chr6": 170805979, "chr7": 159345973, "chr8": 145138636, "chr9": 138394717, "chr10": 133797422,
    "chr11": 135086622, "chr12": 133275309, "chr13": 114364328, "chr14": 107043718, "chr15": 101991189,
    "chr16": 90338345, "chr17": 83257441, "chr18": 80373285, "chr19": 58617616, "chr20": 64444167,
    "chr21": 46709983, "chr22": 50818468, "chrX": 156040895, "chrY": 57227415,
}
GAP_BP = 3_000_000          # pixel-free "centromere" per chromosome, starting at 40 % of its length
WINDOW = 512                # level-1 window = stride (defaults)
L1_DIM, L4_DIM = 128, 256   # level-1 and level-4 default dims


def gap(length: int) -> tuple[int, int]:
    s = int(0.4 * length)
    return s, min(length, s + GAP_BP)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ===================================================================================== make-inputs
def write_fasta(path: Path, width: int = 60) -> None:
    """bgzip FASTA of N runs at GRCh38 lengths; .gzi from bgzip -i, .fai computed (offsets are exact)."""
    line = b"N" * width + b"\n"
    block = line * 16384
    fai = []
    with open(path, "wb") as out:
        proc = subprocess.Popen(["bgzip", "-@", "2", "-i", "-I", f"{path}.gzi", "-c"], stdin=subprocess.PIPE,
                                stdout=out)
        offset = 0
        for name, length in GRCH38.items():
            header = f">{name}\n".encode()
            proc.stdin.write(header)
            offset += len(header)
            fai.append(f"{name}\t{length}\t{offset}\t{width}\t{width + 1}\n")
            full, rest = divmod(length, width)
            for _ in range(full // 16384):
                proc.stdin.write(block)
            proc.stdin.write(line * (full % 16384))
            if rest:
                proc.stdin.write(b"N" * rest + b"\n")
            offset += full * (width + 1) + (rest + 1 if rest else 0)
        proc.stdin.close()
        if proc.wait():
            raise RuntimeError("bgzip failed")
    Path(f"{path}.fai").write_text("".join(fai))
    from genoattn.io.fasta import fasta_index  # checks every header sits where the .fai says
    recs = fasta_index(path)
    assert [(r.name, r.length) for r in recs] == list(GRCH38.items())


def make_cooler(path: Path, band: int, far: int, seed: int) -> dict:
    """Row blocks of pixels (upper triangle, sorted), never a matrix; then ICE balancing stored as 'weight'."""
    import cooler
    import pandas as pd

    rng = np.random.default_rng(seed)
    chromsizes = pd.Series(GRCH38)
    bins = cooler.binnify(chromsizes, RES)
    n = len(bins)
    sizes = np.array([-(-L // RES) for L in GRCH38.values()])
    offs = np.r_[0, np.cumsum(sizes)]
    chrom_of = np.repeat(np.arange(len(sizes)), sizes)
    hi_of = offs[chrom_of + 1]
    valid = np.ones(n, bool)                      # bins outside the synthetic centromere gaps
    tad = np.zeros(n, np.int64)                   # TAD-like block id of each bin
    t_id = 0
    for c, L in enumerate(GRCH38.values()):
        g0, g1 = gap(L)
        valid[offs[c] + g0 // RES: offs[c] + -(-g1 // RES)] = False
        b = offs[c]
        while b < offs[c + 1]:
            w = int(rng.integers(50, 101))        # 0.5-1 Mb blocks
            tad[b:min(b + w, offs[c + 1])] = t_id
            t_id += 1
            b += w
    n_pix = 0

    def blocks(rows: int = 4000):
        nonlocal n_pix
        d = np.arange(band + 1)
        for r0 in range(0, n, rows):
            i = np.arange(r0, min(n, r0 + rows))
            bi, bd = np.repeat(i, band + 1), np.tile(d, len(i))
            bj = bi + bd
            ok = bj < hi_of[bi]
            bi, bj, bd = bi[ok], bj[ok], bd[ok]
            ok = valid[bi] & valid[bj]
            bi, bj, bd = bi[ok], bj[ok], bd[ok]
            lam = 200.0 / (bd + 1.0) * np.where(tad[bi] == tad[bj], 2.5, 1.0)   # P(s) ~ s^-1, TAD enrichment
            cnt = rng.poisson(lam)
            ok = cnt > 0
            b1, b2, c = [bi[ok]], [bj[ok]], [cnt[ok]]
            fi = np.repeat(i, far)                                            # sparse long-range cis
            span = np.maximum(hi_of[fi] - fi - 1, band + 2)
            fj = fi + np.exp(rng.uniform(np.log(band + 1), np.log(span))).astype(np.int64)
            ok = (fj < hi_of[fi])
            ok[ok] &= valid[fi[ok]] & valid[fj[ok]]
            b1.append(fi[ok]); b2.append(fj[ok]); c.append(1 + rng.poisson(0.3, int(ok.sum())))
            ti = np.repeat(i, 8)                                              # sparse trans
            tj = rng.integers(0, n, len(ti))
            ok = (tj >= hi_of[ti]) & valid[ti] & valid[tj]
            b1.append(ti[ok]); b2.append(tj[ok]); c.append(np.ones(int(ok.sum()), np.int64))
            b1, b2, c = np.concatenate(b1), np.concatenate(b2), np.concatenate(c)
            key, inv = np.unique(b1 * n + b2, return_inverse=True)
            n_pix += len(key)
            yield pd.DataFrame({"bin1_id": key // n, "bin2_id": key % n,
                                "count": np.bincount(inv, c).astype(np.int32)})

    t0 = time.time()
    cooler.create_cooler(str(path), bins, blocks(), ordered=True, dtypes={"count": np.int32},
                         symmetric_upper=True, assembly="GRCh38 (synthetic contacts)")
    return {"bins": int(n), "pixels": int(cooler.Cooler(str(path)).info["nnz"]), "tad_blocks": int(t_id),
            "band_bins": band, "far_partners": far, "create_s": round(time.time() - t0, 1)}


def balance(path: Path, max_iters: int, tol: float) -> dict:
    """cooler.balance_cooler (ICE, defaults: ignore_diags 2, min_nnz 10, mad_max 5) with store=True on an
    UNCOMPRESSED scratch copy (each iteration re-reads every pixel: ~4x faster without gzip), then the
    'weight' column and its attributes (converged, var, tol, ...) copied into the gzip cooler the jobs read."""
    import logging

    import cooler
    import h5py

    logging.getLogger("cooler").setLevel(logging.INFO)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    t0 = time.time()
    clr = cooler.Cooler(str(path))
    scratch = path.with_suffix(".scratch.cool")
    nnz, step = int(clr.info["nnz"]), 10_000_000
    cooler.create_cooler(str(scratch), clr.bins()[["chrom", "start", "end"]][:],
                         (clr.pixels()[a:min(nnz, a + step)] for a in range(0, nnz, step)), ordered=True,
                         dtypes={"count": np.int32}, symmetric_upper=True, h5opts={"compression": None})
    t1 = time.time()
    w, stats = cooler.balance_cooler(cooler.Cooler(str(scratch)), chunksize=20_000_000, store=True,
                                     max_iters=max_iters, tol=tol)
    with h5py.File(path, "r+") as f:
        if "weight" in f["bins"]:
            del f["bins"]["weight"]
        d = f["bins"].create_dataset("weight", data=w, compression="gzip", compression_opts=6, shuffle=True)
        d.attrs.update(stats)
    scratch.unlink()
    return {"copy_s": round(t1 - t0, 1), "balance_s": round(time.time() - t1, 1),
            "converged": bool(stats["converged"]), "var": float(stats.get("var", np.nan)), "tol": tol,
            "marginal_rel_std": float(np.sqrt(stats.get("var", np.nan)) / stats.get("scale", np.nan)),
            "max_iters": max_iters, "masked_bins": int(np.isnan(w).sum()), "bytes": path.stat().st_size}


def write_level1_chr1(path: Path, seed: int) -> dict:
    """Level-1 store of chr1's shape (the level-1 writer's arrays and chunks), random embeddings."""
    from genoattn.io.store import RowWriter, atomic_store, mark_coordinates

    length = GRCH38["chr1"]
    starts = np.arange(0, length, WINDOW, dtype=np.int64)
    n = len(starts)
    g0, g1 = gap(length)
    skipped = (starts >= g0) & (starts < g1)                  # the all-N gap: skipped windows
    rng = np.random.default_rng(seed)
    wchunk = 4096                                             # level1.run's chunk at batch_size 64
    attrs = {"level": "level1", "contig": "chr1", "contig_length": length, "window": WINDOW, "stride": WINDOW,
             "dim": L1_DIM, "synthetic": "random embeddings (human_scale.py), not a model's output",
             "model": {"weights": "synthetic-random"}, "n_windows": n, "n_skipped": int(skipped.sum()),
             "n_exon_bases": 0}
    with atomic_store(path, attrs=attrs) as s:
        s.write("window_start", starts, ("window",))
        s.write("window_end", np.minimum(starts + WINDOW, length), ("window",))
        emb = RowWriter(s.create("window_embedding", (n, L1_DIM), "float32", ("window", "feature"),
                                 chunks=(wchunk, L1_DIM)))
        for a in range(0, n, 65536):
            b = min(n, a + 65536)
            e = rng.standard_normal((b - a, L1_DIM), dtype=np.float32)
            e[skipped[a:b]] = 0
            emb.append(e)
        emb.close()
        s.write("window_n_bases", np.where(skipped, 0, np.minimum(starts + WINDOW, length) - starts).astype(np.int32),
                ("window",), chunks=(wchunk,))
        s.write("window_skipped", skipped, ("window",), chunks=(wchunk,))
        s.write("exon_base_position", np.zeros(0, np.int64), ("exon_base",))
        s.create("exon_base_embedding", (0, L1_DIM), "float16", ("exon_base", "feature"), chunks=(65536, L1_DIM))
        s.create("exon_base_token", (0,), "uint8", ("exon_base",), chunks=(1 << 20,))
        mark_coordinates(s, "window_start", "window_end", "exon_base_position")
    return {"windows": n, "skipped": int(skipped.sum())}


def write_level4(results: Path, seed: int) -> dict:
    """Level-4 stores of every contig (store contract of genoattn.levels.regulatory), random embeddings."""
    from genoattn.io.store import atomic_store, mark_coordinates

    rng = np.random.default_rng(seed + 1)
    total = 0
    for c, L in GRCH38.items():
        nb = -(-L // RES)
        start = np.arange(nb, dtype=np.int64) * RES
        end = np.minimum(start + RES, L)
        g0, g1 = gap(L)
        masked = (end > g0) & (start < g1)
        emb = rng.standard_normal((nb, L4_DIM), dtype=np.float32)
        emb[masked] = 0
        attrs = {"level": "level4", "contig": c, "resolution": RES, "dim": L4_DIM, "n_bins": nb,
                 "synthetic": "random embeddings (human_scale.py), not a model's output",
                 "model": {"weights": "synthetic-random"}}
        with atomic_store(results / REF / "level4" / f"{c}.zarr", attrs=attrs) as w:
            w.write("chrom", np.array([c] * nb), dims=("bin",))
            w.write("start", start, dims=("bin",))
            w.write("end", end, dims=("bin",))
            w.write("masked", masked, dims=("bin",))
            w.write("embedding", emb, dims=("bin", "feature"))
            mark_coordinates(w, "chrom", "start", "end", "masked")
        total += nb
    return {"contigs": len(GRCH38), "bins": total}


def write_vcf(path: Path, n_variants: int, n_samples: int, seed: int) -> dict:
    rng = np.random.default_rng(seed + 2)
    pool = []
    while len(pool) < 4096:                                     # polymorphic phased rows, AF log-uniform
        af = 10 ** rng.uniform(np.log10(0.003), np.log10(0.5))
        h = (rng.random((n_samples, 2)) < af).astype(np.int8)
        if 0 < h.sum() < 2 * n_samples:
            pool.append("\t".join(f"{a}|{b}" for a, b in h))
    names = list(GRCH38)
    lengths = np.array(list(GRCH38.values()), np.float64)
    per = np.floor(lengths / lengths.sum() * n_variants).astype(np.int64)
    per[0] += n_variants - per.sum()
    header = ["##fileformat=VCFv4.2", '##FILTER=<ID=PASS,Description="All filters passed">',
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              *(f"##contig=<ID={c},length={L}>" for c, L in GRCH38.items()),
              "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
                        + [f"S{i:06d}" for i in range(n_samples)])]
    bases = np.array(list("ACGT"))
    with open(path, "wb") as out:
        proc = subprocess.Popen(["bgzip", "-@", "2", "-c"], stdin=subprocess.PIPE, stdout=out)
        proc.stdin.write(("\n".join(header) + "\n").encode())
        row = 0
        for c, k in zip(names, per):
            pos = np.sort(rng.choice(GRCH38[c] - 2, size=int(k), replace=False)) + 1
            ref = rng.integers(0, 4, k)
            alt = (ref + rng.integers(1, 4, k)) % 4
            new = rng.random(k) >= 0.7                           # else repeat the previous row (LD run)
            draws = rng.integers(0, len(pool), k)
            idx = np.empty(k, np.int64)
            for j in range(k):
                if new[j] or j == 0:
                    row = draws[j]
                idx[j] = row
            for a in range(0, k, 20000):
                b = min(k, a + 20000)
                lines = [f"{c}\t{pos[j]}\t.\t{bases[ref[j]]}\t{bases[alt[j]]}\t.\tPASS\t.\tGT\t{pool[idx[j]]}\n"
                         for j in range(a, b)]
                proc.stdin.write("".join(lines).encode())
        proc.stdin.close()
        if proc.wait():
            raise RuntimeError("bgzip failed")
    subprocess.run(["tabix", "-f", "-p", "vcf", str(path)], check=True)
    return {"variants": int(n_variants), "samples": n_samples, "bytes": path.stat().st_size}


def write_config(work: Path) -> Path:
    import yaml

    cfg = {
        "results": str(work / "results"),
        "references": {REF: {"fasta": str(work / "genome.fa.gz"), "hic": str(work / "hic_10kb.cool")}},
        "cohorts": {COHORT: {"vcf": str(work / "cohort.vcf.gz"), "reference": REF},
                    **{c: {"vcf": str(work / "cohort.vcf.gz"), "reference": REF, "regions": r}
                       for c, r in SUB_COHORTS.items()}},
        "samples": None,
        "kernels": {"device": "cpu", "backend": "cpu"},
        # level 4/5/6 at the schema defaults (level 5: dim 512, 32 heads; the demo config's 256/16 is its checkpoint's)
    }
    from genoattn.config import load_config

    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    load_config(path)  # validated as the workflow does
    cfg["levels"] = {"level6": {"samples_per_shard": 1, "batch_size": 1}}
    (work / JOB_CONFIG["level6_shard"]).write_text(yaml.safe_dump(cfg, sort_keys=False))
    load_config(work / JOB_CONFIG["level6_shard"])
    return path


def make_inputs(a) -> None:
    work = Path(a.workdir).resolve()
    if str(work).startswith(str(ROOT)):
        raise SystemExit(f"WORKDIR {work} is inside the repository; use e.g. /tmp/human_scale")
    work.mkdir(parents=True, exist_ok=True)
    meta_path = work / "inputs.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    steps = [
        ("fasta", work / "genome.fa.gz", lambda p: write_fasta(p) or {"bytes": p.stat().st_size}),
        ("cooler", work / "hic_10kb.cool", lambda p: make_cooler(p, a.band, a.far, a.seed)),
        ("balance", work / "hic_10kb.cool", lambda p: balance(p, a.balance_iters, a.balance_tol)),
        ("level1_chr1", work / "results" / REF / "level1" / "chr1.zarr", lambda p: write_level1_chr1(p, a.seed)),
        ("level4_all", work / "results" / REF / "level4" / "chrY.zarr", lambda p: write_level4(work / "results", a.seed)),
        ("vcf", work / "cohort.vcf.gz", lambda p: write_vcf(p, a.variants, a.samples, a.seed)),
    ]
    for name, path, fn in steps:
        if a.steps and name not in a.steps:
            continue
        if name in meta and path.exists():
            log(f"{name}: exists ({path})")
            continue
        log(f"{name}: writing {path}")
        t = time.time()
        info = {**(fn(path) or {}), "seconds": round(time.time() - t, 1), "path": str(path)}
        log(f"{name}: {info}")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}  # steps may run in two processes
        meta[name] = info
        meta_path.write_text(json.dumps(meta, indent=1))
    if all(n in meta for n, _, _ in steps):
        meta["config"] = str(write_config(work))
        meta_path.write_text(json.dumps(meta, indent=1))
    log(f"inputs ready in {work}; disk used: {du(work) / 1e9:.2f} GB")


# ============================================================================================ run
def du(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def n_files(path: Path) -> int:
    return sum(1 for f in Path(path).rglob("*") if f.is_file())


def profile_resources(rule: str, attempt: int = 1) -> dict:
    """mem_mb / runtime of ``rule`` in profiles/slurm/config.yaml (set-resources, else default-resources)."""
    import yaml

    prof = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    default = prof.get("default-resources", {})
    entry = (prof.get("set-resources") or {}).get(rule, {})
    out = {}
    for key in ("mem_mb", "runtime"):
        expr, src = (entry[key], "set-resources") if key in entry else (default.get(key), "default-resources")
        out[key] = int(eval(str(expr), {"__builtins__": {}}, {"attempt": attempt}))
        out[f"{key}_expr"] = f"{expr} ({src})"
    out["partition"] = entry.get("slurm_partition", default.get("slurm_partition"))
    return out


JOBS = [  # (rule, wildcards, what it is here)
    ("hic_graph", {"reference": REF, "contig": "chr1"}, "cis graph of chr1 (24,896 bins) from the synthetic cooler"),
    ("hic_trans", {"reference": REF}, "genome-wide trans links, 24 contigs"),
    ("level4_contig", {"reference": REF, "contig": "chr1"}, "level 4 on the chr1 graph made above, synthetic level-1 store"),
    ("level5_genome", {"reference": REF}, "level 5 over 24 level-4 stores (chr1 from the job above, 23 synthetic)"),
    ("genotypes_cohort", {"cohort": COHORT}, "1 M-variant VCF -> genotypes.zarr (one job, no split_bp)"),
    ("ld_blocks", {"cohort": COHORT}, "LD blocks of the 1 M-variant genotypes store"),
    # not genome-wide, but the per-shard memory at 1 M variants is what the profile must hold: one individual
    # (config_level6.yaml: samples_per_shard 1, batch_size 1), level-5 context from the job above
    ("level6_shard", {"cohort": COHORT, "shard": "0"}, "level 6, one individual x 1 M variants, batch 1"),
    # level-6 memory against the variant count: the same VCF restricted to chr1-3 and chr1-7 (~22 % and ~45 %)
    *[(rule, {"cohort": c, **({"shard": "0"} if rule == "level6_shard" else {})}, f"{what}, {c}")
      for c in SUB_COHORTS for rule, what in (("genotypes_cohort", "VCF -> genotypes.zarr"),
                                              ("ld_blocks", "LD blocks"),
                                              ("level6_shard", "level 6, one individual, batch 1"))],
]
JOB_CONFIG = {"level6_shard": "config_level6.yaml"}

CHILD = r"""
import json, logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
from genoattn import jobs as J
from genoattn.cli_jobs import CliJob, Context, run_jobs
from genoattn.config import load_config
from genoattn.runtime import set_threads
config_path, rule, wildcards = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = load_config(config_path)
set_threads(2)
ctx = Context(config, config_path)
job = J.spec(rule).job(ctx.L, wildcards)
t = time.time()
run_jobs([CliJob(job, True)], ctx, threads=2, log=lambda m: print(m, file=sys.stderr))
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"output": job.output, "job_seconds": time.time() - t, "vmhwm_mb": hwm / 1024}))
"""


def _rss_mb(pid: int) -> float:
    try:
        return next(int(x.split()[1]) for x in open(f"/proc/{pid}/status") if x.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return 0.0


def run_one(config: Path, rule: str, wildcards: dict, timeout_s: int, log_path: Path, mem_limit_mb: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
               GENOATTN_CACHE_DIR=tempfile.mkdtemp(prefix="ga_cache_"))  # cold sha256 cache, as a fresh node
    load0 = os.getloadavg()
    t0 = time.time()
    with open(log_path, "w") as logf:
        p = subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", CHILD, str(config), rule, json.dumps(wildcards)],
                             stdout=subprocess.PIPE, stderr=logf, env=env, cwd=ROOT, text=True)
        timed_out = killed_mem = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            # a watchdog, as SLURM's cgroup would: the machine is shared, so a job stops at mem_limit_mb
            killed_mem = _rss_mb(p.pid) > mem_limit_mb
            timed_out = time.time() - t0 > timeout_s
            if killed_mem or timed_out:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.2)
    wall = time.time() - t0
    out = p.stdout.read()
    rc = os.waitstatus_to_exitcode(status)
    res = {"rule": rule, "wildcards": wildcards, "returncode": rc, "timed_out": timed_out,
           "killed_at_mem_limit_mb": mem_limit_mb if killed_mem else None,
           "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
           "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "loadavg_before": [round(x, 2) for x in load0],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()], "log": str(log_path)}
    if rc == 0 and out.strip():
        child = json.loads(out.strip().splitlines()[-1])
        res.update(output=child["output"], vmhwm_mb=round(child["vmhwm_mb"], 1))
    else:
        res["error_tail"] = Path(log_path).read_text()[-2000:]
    return res


def store_summary(rule: str, output: str) -> dict:
    """Size, file count and the headline attributes of the job's output store."""
    from genoattn.io.store import read_attrs

    p = Path(output)
    out = {"bytes": du(p), "files": n_files(p)}
    try:
        attrs = read_attrs(p)
    except Exception:  # noqa: BLE001 - only for the report
        return out
    keep = {"hic_graph": ["n_bins", "n_edges", "density", "masked_fraction"],
            "hic_trans": ["n_links", "n_hic_links"],
            "level4_contig": ["n_bins", "n_masked", "n_edges", "density"],
            "level5_genome": ["n_bins", "n_masked", "nnz_blocks", "density", "n_trans_links_used"],
            "genotypes_cohort": ["filter_counts"], "ld_blocks": []}.get(rule, [])
    out.update({k: attrs[k] for k in keep if k in attrs})
    if rule == "hic_graph":
        st = attrs.get("stats", {})
        out.update({k: st.get(k) for k in ("n_pixels_read", "n_top_edges", "n_boundaries", "seconds")})
    if rule == "hic_trans":
        out["n_pixels_read"] = attrs.get("stats", {}).get("n_pixels_read")
    if rule == "ld_blocks":
        from genoattn.io.store import open_group
        out["n_blocks"] = int(open_group(p)["ld_block_start"].shape[0])
    return out


def run(a) -> None:
    work = Path(a.workdir).resolve()
    config = work / "config.yaml"
    if not config.exists():
        raise SystemExit(f"{config} missing: run `make-inputs {work}` first")
    inputs = json.loads((work / "inputs.json").read_text())
    out_path = Path(a.json)
    result = json.loads(out_path.read_text()) if out_path.exists() and a.only else {}
    result.update({"machine": {"cpus": os.cpu_count(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                               "gpu": None, "note": "shared machine (another engineer training models); jobs "
                               "under nice -n 10, 2 torch threads: wall times are contended, CPU times less so"},
                   "inputs": inputs, "margin": a.margin, "timeout_s": a.timeout})
    jobs = result.setdefault("jobs", {})
    (work / "logs").mkdir(exist_ok=True)
    for rule, wc, what in JOBS:
        name = f"{rule} {' '.join(wc.values())}"
        if a.only and rule not in a.only and name not in a.only:
            continue
        log(f"{rule} {wc}: running ({what})")
        r = run_one(work / JOB_CONFIG.get(rule, "config.yaml"), rule, wc, a.timeout, work / "logs" / f"{rule}.log",
                    a.mem_limit)
        r["config"] = JOB_CONFIG.get(rule, "config.yaml")
        r["what"] = what
        r["profile"] = prof = profile_resources(rule)
        if r["returncode"] == 0:
            r["store"] = store_summary(rule, r["output"])
        need = r["peak_rss_mb"] * a.margin
        r["profile_ok_mem"] = prof["mem_mb"] >= need
        r["profile_ok_runtime_here"] = r["wall_s"] / 60 <= prof["runtime"]
        if r.get("killed_at_mem_limit_mb"):  # the peak is only a lower bound: no proposal from it
            r["peak_is_lower_bound"] = True
        elif not r["profile_ok_mem"]:
            r["proposed_mem_mb"] = int(math.ceil(need / 1000) * 1000)
        jobs[name] = r
        log(f"{rule}: rc {r['returncode']}, wall {r['wall_s']} s, cpu {r['cpu_s']} s, peak {r['peak_rss_mb']} MB "
            f"(profile {prof['mem_mb']} MB / {prof['runtime']} min), load {r['loadavg_before']} -> {r['loadavg_after']}")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.exists():  # keep the jobs another `run --only` wrote meanwhile
            on_disk = json.loads(out_path.read_text()).get("jobs", {})
            result["jobs"] = jobs = {**on_disk, **jobs}
        out_path.write_text(json.dumps(result, indent=1))
    log(f"wrote {out_path}")


# =========================================================================================== plan
# Human genome and cohort of the plan. Every figure not measured here is an ASSUMPTION, named as such.
PLAN_ASSUMPTIONS = {
    "genome": "GRCh38 primary chromosomes chr1-22, X, Y (3.09 Gbp, 24 contigs); 10 kb Hi-C",
    "exon_bases": (125e6, "union of GENCODE comprehensive exon bases, ~4 % of GRCh38 (assumption)"),
    "genes": (20_000, "protein-coding genes, one canonical (MANE Select) transcript each"),
    "cds_codons": (11.3e6, "canonical CDS ~34 Mbp (20 K x ~1.7 kb) / 3 (assumption)"),
    "utr_bases": (30e6, "canonical UTR bases, 20 K x ~1.5 kb (assumption)"),
    "exons": (210_000, "canonical exons, ~10.5 per gene (assumption)"),
    "annotation_rows": (3.4e6, "GENCODE GTF rows (benchmarks/RESULTS.md, annotation section)"),
    "cis_pixels": (1.0e9, "non-zero cis pixels of a deep human 10 kb cooler (benchmarks/RESULTS.md, Hi-C section)"),
    "samples": (500_000, "cohort individuals"),
    "variants": (10_000_000, "biallelic SNVs kept after filters (e.g. imputed-array or WGS at MAF >= 0.1 %)"),
    "split_bp": (20_000_000, "cohorts.<name>.split_bp for the conversion (one genotypes_part job per 20 Mb)"),
    "samples_per_shard": (1000, "levels.level6.samples_per_shard for a biobank (config/README: 1000+)"),
}
FILE_LIMIT = 10_000
# compressed / logical bytes of call_genotype + _mask + _phased (5 B per call) written by genoattn.io.vcf for
# the REAL demo VCF (data/demo/1kg_chr20/reference.vcf.gz: 18,788 variants x 300 samples, no MAF filter):
# 440,159 / 28.2 M bytes, measured for this plan (convert_vcf into /tmp). The synthetic 1 M x 500 store of the
# run gives 0.016 too, but its rows repeat a pool, so the real ratio is the one used.
REAL_GT_RATIO = 0.0156


def _chunk_files(shape, chunks=None, dtype="float32") -> int:
    """Chunk files of one zarr array (the writers' chunking; None = genoattn.io.store._default_chunks)."""
    from genoattn.io.store import _default_chunks

    chunks = chunks or _default_chunks(shape, np.dtype(dtype))
    return int(np.prod([max(1, math.ceil(s / c)) for s, c in zip(shape, chunks)]))


def _shard_advice(shape, chunks, itemsize, files_budget) -> dict:
    """Shard = k chunk rows along axis 0 x the whole other axes, k the smallest giving <= files_budget shards."""
    rows = math.ceil(shape[0] / chunks[0])
    k = max(1, math.ceil(rows / files_budget))
    shard = (chunks[0] * k,) + tuple(shape[1:])
    return {"shard_shape": shard, "shards": math.ceil(shape[0] / shard[0]),
            "shard_logical_bytes": int(np.prod(shard) * itemsize)}


def _load(name: str) -> dict:
    p = ROOT / "benchmarks" / "results" / name
    return json.loads(p.read_text()) if p.exists() else {}


def build_plan(run_json: dict) -> dict:
    A = {k: (v[0] if isinstance(v, tuple) else v) for k, v in PLAN_ASSUMPTIONS.items()}
    L = np.array(list(GRCH38.values()), np.int64)
    genome_bp = int(L.sum())
    bins_c = -(-L // RES)
    bins = int(bins_c.sum())
    win_c = -(-L // WINDOW)
    windows = int(win_c.sum())
    chr1_frac = L[0] / genome_bp
    S, V = int(A["samples"]), int(A["variants"])
    jobs = run_json.get("jobs", {})

    def measured(rule):
        return next((j for j in jobs.values() if j["rule"] == rule and j.get("returncode") == 0), None)

    l1, l23, coh = _load("level1_cpu.json"), _load("levels23_cpu.json"), _load("cohort_cpu.json")
    rows = []

    def row(rule, n_jobs, cpu_h, cpu_src, store_bytes, files, store_src, note=""):
        prof = profile_resources(rule)
        gpu = prof["partition"] == "gpu"
        rows.append({"rule": rule, "jobs": int(n_jobs), "partition": prof["partition"],
                     "cpu_hours": None if cpu_h is None else round(cpu_h, 2), "cpu_source": cpu_src,
                     "gpu_hours_booked": round(n_jobs * prof["runtime"] / 60, 1) if gpu else 0.0,
                     "profile": f"{prof['mem_mb']} MB, {prof['runtime']} min (attempt 1)",
                     "storage_bytes": None if store_bytes is None else int(store_bytes), "storage_source": store_src,
                     "files_per_store": int(files) if files is not None else None,
                     "needs_sharding": bool(files is not None and files > FILE_LIMIT), "note": note})

    # level 0: tokens (all contigs in one store; chunks of levels.tokenize.chunk_size = 1 Mi bases)
    tok_rate = 12.07e6 / next(m["seconds"] for m in l1["memory"] if "whole genome" in m["what"])
    files = sum(2 * math.ceil(x / (1 << 20)) for x in L)
    row("tokenize_reference", 1, genome_bp / tok_rate / 3600, "level1_cpu.json: 12.07 Mbp in 1.2 s",
        2 * genome_bp * 0.153, files, "2 B/bp x 0.153 (compression of the demo tokens.zarr)")
    row("annotation", 1, A["annotation_rows"] * 13.7e-6 / 3600, "RESULTS.md: 13.7 us/row (synthetic GENCODE-like GTF)",
        A["annotation_rows"] * 365410 / 25829, 1, "14 B/row (demo annotation.parquet)")
    # level 1: windows x 128 float32 + exon bases x 128 float16 (chunks: 4096 windows, 65536 exon bases)
    w_rate = next(t["windows_per_s"] for t in l1["throughput"] if t["reverse_complement"] and "ours" in t["path"])
    eb = A["exon_bases"]
    l1_bytes = windows * (L1_DIM * 4 + 4 + 1 + 16) + eb * (L1_DIM * 2 + 1 + 8)
    w1, e1 = int(win_c[0]), eb * chr1_frac
    files = 3 * math.ceil(w1 / 4096) + 2 + math.ceil(e1 / 65536) + math.ceil(e1 / (1 << 20)) + _chunk_files((e1,), dtype="int64")
    row("level1_contig", len(L), 2 * 2 * windows / w_rate / 3600,
        f"level1_cpu.json: {w_rate} windows/s, 2 threads, 1-block model; x2 for the 2-block default (README), "
        "x2 threads = core-hours", l1_bytes, files,
        "logical bytes (float embeddings do not compress: ratio ~1)", "largest store: chr1")
    # levels 2-3
    tokens2 = 3 * A["cds_codons"]
    c_rate = l23["summary"]["codons_per_s_run"]
    row("level2_contig", len(L), 2 * tokens2 / c_rate / 3600,
        f"levels23_cpu.json: {c_rate:.0f} codon tokens/s (run(), 2 threads: x2 = core-hours)",
        tokens2 * (L1_DIM * 2 + 3 * 8 + 16), math.ceil(tokens2 * chr1_frac / 65536) + 12,
        "codon_embedding float16 x 128 + positions (logical)", "3 frames of the canonical CDS")
    pooled = tokens2 + A["utr_bases"]
    row("level3_contig", len(L), 2 * pooled / 17_000 / 3600,
        "RESULTS.md levels 2-3: ~17,000 pooled tokens/s (2 threads: x2 = core-hours)",
        (A["exons"] + 2 * A["genes"]) * 256 * 4, 20, "exon/transcript/gene embeddings float32 x 256 (logical)")
    # Hi-C graph: this run's chr1 job scaled by pixels (time) and by bins^2 (edges, store)
    hg, ht = measured("hic_graph"), measured("hic_trans")
    if hg:
        st = hg["store"]
        pix_rate = st["n_pixels_read"] / hg["cpu_s"]
        edge_scale = float((bins_c.astype(float) ** 2).sum() / bins_c[0] ** 2)
        row("hic_graph", len(L), (A["cis_pixels"] / pix_rate + len(L) * 5) / 3600,
            f"this run: chr1 {st['n_pixels_read'] / 1e6:.1f} M pixels in {hg['cpu_s']} CPU-s = {pix_rate / 1e6:.2f} M pixels/CPU-s, "
            "x assumed 1e9 cis pixels", st["bytes"] * edge_scale, st["files"],
            f"this run's chr1 store x sum(bins^2)/chr1 bins^2 = {edge_scale:.1f}", "time grows with pixels, memory with edges")
    if ht:
        row("hic_trans", 1, (A["cis_pixels"] * 1.1) / (ht["store"]["n_pixels_read"] / ht["cpu_s"]) / 3600,
            f"this run: {ht['store']['n_pixels_read'] / 1e6:.0f} M pixels in {ht['cpu_s']} CPU-s, x 1.1e9 pixels",
            ht["store"]["bytes"], ht["store"]["files"], "this run's store (links capped by trans_max_links)")
    l4, l5 = measured("level4_contig"), measured("level5_genome")
    if l4:
        e1_ = l4["store"]["n_edges"]
        edges = e1_ * float((bins_c.astype(float) ** 2).sum() / bins_c[0] ** 2)
        row("level4_contig", len(L), edges / (e1_ / l4["cpu_s"]) / 3600,
            f"this run: chr1 {e1_ / 1e6:.1f} M edges in {l4['cpu_s']} CPU-s; genome {edges / 1e6:.0f} M edges",
            l4["store"]["bytes"] * bins / bins_c[0], l4["store"]["files"], "this run's chr1 store x bins")
    if l5:
        row("level5_genome", 1, l5["cpu_s"] / 3600, "this run: the human-size job itself",
            l5["store"]["bytes"], l5["store"]["files"], "this run's store")
    # genotypes: the writer's chunking at S samples: chunk_variants = max(64, min(10000, 2e7 / S)), 1000 samples
    from genoattn.io.vcf import auto_chunk_variants

    cv, cs = auto_chunk_variants(S), 1000
    g3 = _chunk_files((V, S, 2), (cv, cs, 2))
    g1 = _chunk_files((V,), (cv,))
    gt_files = 2 * g3 + _chunk_files((V, S), (cv, cs)) + 6 * g1
    gm = measured("genotypes_cohort")
    rate = gm and (1e6 * run_json["inputs"]["vcf"]["samples"] / gm["cpu_s"])
    ratio = gm and gm["store"]["bytes"] / (1e6 * run_json["inputs"]["vcf"]["samples"] * 5 + 1e6 * 40)
    rate_wide = coh["convert_wide_synthetic"]["genotypes_per_cpu_s"]
    n_parts = int(sum(math.ceil(x / A["split_bp"]) for x in L))
    gbytes = S * V * 5 * REAL_GT_RATIO + V * 40
    part_files = _chunk_files((V / n_parts, S, 2), (cv, cs, 2))
    row("genotypes_part", n_parts, S * V / rate_wide / 3600,
        f"cohort_cpu.json: {rate_wide / 1e6:.1f} M genotypes/CPU-s at 15,000 samples"
        + (f" (this run: {rate / 1e6:.1f} M at 500)" if rate else ""), gbytes, 2 * part_files + part_files // 2,
        f"{S * V * 5 / 1e12:.0f} TB logical (5 B per call) x {REAL_GT_RATIO} (compression of real 1000 Genomes "
        f"calls by the same writer; this run's synthetic store: {ratio:.3f})" if ratio else "",
        f"temporary (removed after the join); chunks ({cv}, {cs}, 2) at {S} samples; files: one part's store")
    row("genotypes_cohort", 1, 0.4 * S * V / rate_wide / 3600, "RESULTS.md: the join re-encodes every genotype (~40 % of the conversion)",
        gbytes, gt_files, "as the parts", "the join; chunks as the parts")
    ld = measured("ld_blocks")
    if ld:
        ms = 5000  # levels.level6.ld_blocks.max_samples default
        row("ld_blocks", 1, ld["cpu_s"] * (V / 1e6) * (ms / run_json["inputs"]["vcf"]["samples"]) / 3600,
            "this run (1 M x 500) x variants x max_samples 5000 (lower bound: reading 5000 of 500 K columns "
            "decompresses every sample chunk)", ld["store"]["bytes"] * V / 1e6, ld["store"]["files"], "this run x variants")
    us = coh["level6_all"]["cpu_us_per_individual_variant"]
    sps = A["samples_per_shard"]
    n_shards = math.ceil(S / sps)
    # level-6 peak memory (one individual, batch 1) against the variant count: a line through this run's shards
    pts = []
    for j in jobs.values():
        g = jobs.get(f"genotypes_cohort {j['wildcards'].get('cohort')}")
        if j["rule"] == "level6_shard" and j.get("returncode") == 0 and g and g.get("store"):
            pts.append((g["store"]["filter_counts"]["kept"], j["peak_rss_mb"]))
    l6_mem = None
    if len(pts) >= 2:
        (v0, m0), (v1, m1) = sorted(pts)[0], sorted(pts)[-1]
        slope = (m1 - m0) / (v1 - v0)
        l6_mem = {"points_variants_peak_mb": sorted(pts), "mb_per_million_variants": round(slope * 1e6, 1),
                  "intercept_mb": round(m0 - slope * v0, 1),
                  "predicted_peak_mb_1m": round(m0 + slope * (1e6 - v0), 1),
                  f"predicted_peak_gb_{V // 1_000_000}m_batch1": round((m0 + slope * (V - v0)) / 1024, 1)}
    row("level6_shard", n_shards, S * V * us * 1e-6 / 3600, f"cohort_cpu.json: {us:.0f} CPU-us per individual-variant",
        n_shards * sps * 256 * 4, _chunk_files((sps, 256)) + 1, "sample_embedding float32 x 256",
        f"{sps} samples per shard; the shard's genotypes alone are {V * sps * 2 / 1e9:.0f} GB int8 in memory"
        + (f"; one individual at batch 1 needs ~{l6_mem[f'predicted_peak_gb_{V // 1_000_000}m_batch1']} GB "
           f"(this run: {l6_mem['mb_per_million_variants'] / 1024:.1f} GB per M variants): does not fit 16 GB, "
           "nor one H200's 141 GB" if l6_mem else ""))
    row("level6_gather", 1, None, "I/O only", S * 256 * 4, _chunk_files((S, 256)) + _chunk_files((S,), dtype="int64") + 20,
        "sample_embedding float32 x 256 (no block_embedding)")

    sharding = {
        "genotypes.zarr call_genotype (and _mask)": {"shape": (V, S, 2), "chunks": (cv, cs, 2),
                                                      "chunk_files": g3, **_shard_advice((V, S, 2), (cv, cs, 2), 1, 3000)},
        "genotypes.zarr variant_* (6 arrays)": {"shape": (V,), "chunks": (cv,), "chunk_files": g1,
                                                **_shard_advice((V,), (cv,), 8, 10)},
    }
    return {"assumptions": {k: (list(v) if isinstance(v, tuple) else v) for k, v in PLAN_ASSUMPTIONS.items()},
            "genome": {"bp": genome_bp, "bins_10kb": bins, "level1_windows": windows, "contigs": len(L)},
            "rows": rows, "totals": {"gpu_hours_booked": round(sum(r["gpu_hours_booked"] for r in rows), 1),
                                     "cpu_hours": round(sum(r["cpu_hours"] or 0 for r in rows), 1),
                                     "storage_tb_kept": round(sum(r["storage_bytes"] or 0 for r in rows
                                                                  if r["rule"] != "genotypes_part") / 1e12, 2)},
            "sharding": sharding, "level6_memory": l6_mem,
            "gpu_note": "No GPU was used. cpu_hours extrapolate CPU measurements (2-core machine, 2 threads). "
                        "gpu_hours_booked = jobs x the profile's runtime at attempt 1 (what SLURM reserves), not a "
                        "measured GPU time; DESIGN.md's H200 targets (level 1 genome 4-5 s, level 4 0.05-0.25 s, "
                        "level 5 5-10 ms, level 6 3 ms per individual) are unmeasured."}


def plan(a) -> None:
    run_json = json.loads(Path(a.run).read_text()) if a.run and Path(a.run).exists() else {}
    p = build_plan(run_json)
    print(f"{'rule':20} {'jobs':>6} {'CPU-h':>10} {'GPU-h booked':>12} {'storage GB':>11} {'files/store':>12}")
    for r in p["rows"]:
        gb = "" if r["storage_bytes"] is None else f"{r['storage_bytes'] / 1e9:.1f}"
        ch = "" if r["cpu_hours"] is None else f"{r['cpu_hours']:.1f}"
        print(f"{r['rule']:20} {r['jobs']:>6} {ch:>10} {r['gpu_hours_booked']:>12} {gb:>11} "
              f"{r['files_per_store']:>12}{'  SHARD' if r['needs_sharding'] else ''}")
    print(json.dumps(p["totals"]))
    if a.json:  # under "plan" in that file (the run's JSON: one file holds both)
        path = Path(a.json)
        data = json.loads(path.read_text()) if path.exists() else {}
        data["plan"] = p
        path.write_text(json.dumps(data, indent=1, default=str))
    if a.markdown:
        print(markdown(run_json, p))


def markdown(run_json: dict, p: dict) -> str:
    """The two tables of benchmarks/RESULTS.md ("Human-size run")."""
    out = ["| rule | job | peak RSS (MiB) | wall | CPU | load before -> after | profile mem_mb / runtime | mem OK (>= 1.5x peak) |",
           "|---|---|---|---|---|---|---|---|"]
    for name, j in run_json.get("jobs", {}).items():
        pr = j["profile"]
        status = ("OK" if j["profile_ok_mem"] else f"too small: propose {j['proposed_mem_mb']}") \
            if j["returncode"] == 0 else ("killed at watchdog" if j.get("killed_at_mem_limit_mb") else "FAILED")
        peak = (f"> {j['killed_at_mem_limit_mb']:,.0f} (killed)" if j.get("killed_at_mem_limit_mb")
                else f"{j['peak_rss_mb']:,.0f}")
        out.append(f"| {j['rule']} | {j['what']} | {peak} | {j['wall_s'] / 60:.1f} min | "
                   f"{j['cpu_s'] / 60:.1f} min | {j['loadavg_before'][0]} -> {j['loadavg_after'][0]} | "
                   f"{pr['mem_mb']} MB / {pr['runtime']} min | {status} |")
    out += ["", "| rule | partition | jobs | CPU-hours (extrapolated) | GPU-hours booked | storage | files per store | source |",
            "|---|---|---|---|---|---|---|---|"]
    for r in p["rows"]:
        size = "" if r["storage_bytes"] is None else (f"{r['storage_bytes'] / 1e12:.2f} TB" if r["storage_bytes"] > 1e12
                                                      else f"{r['storage_bytes'] / 1e9:.1f} GB")
        files = f"{r['files_per_store']:,}" + (" **shard**" if r["needs_sharding"] else "")
        cpu = "" if r["cpu_hours"] is None else f"{r['cpu_hours']:,.1f}"
        out.append(f"| {r['rule']} | {r['partition']} | {r['jobs']:,} | {cpu} | {r['gpu_hours_booked']:,.0f} | {size} | "
                   f"{files} | {r['cpu_source']}; storage: {r['storage_source']}{'; ' + r['note'] if r['note'] else ''} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-inputs")
    m.add_argument("workdir")
    m.add_argument("--samples", type=int, default=500)
    m.add_argument("--variants", type=int, default=1_000_000)
    m.add_argument("--band", type=int, default=300, help="dense band of the cooler in bins (300 = 3 Mb)")
    m.add_argument("--far", type=int, default=100, help="sampled long-range cis partners per bin")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--steps", nargs="*", help="only these steps (fasta cooler balance level1_chr1 level4_all vcf)")
    m.add_argument("--balance-iters", type=int, default=30, help="cooler.balance_cooler max_iters (30: see RESULTS.md, Human-size run)")
    m.add_argument("--balance-tol", type=float, default=1e-5, help="cooler.balance_cooler tol (its default)")
    r = sub.add_parser("run")
    r.add_argument("workdir")
    r.add_argument("--json", required=True)
    r.add_argument("--only", nargs="*", help="rules or job names ('level6_shard synthetic_chr1_3 0') to (re)run; "
                   "the others' results are kept from --json")
    r.add_argument("--timeout", type=int, default=1200, help="seconds per job (20 min)")
    r.add_argument("--margin", type=float, default=1.5, help="mem_mb must be >= margin x measured peak")
    r.add_argument("--mem-limit", type=float, default=16000, help="kill a job whose RSS passes this many MB")
    p = sub.add_parser("plan")
    p.add_argument("--json", default=None)
    p.add_argument("--run", default=str(ROOT / "benchmarks" / "results" / "human_scale.json"))
    p.add_argument("--markdown", action="store_true", help="also print the tables of benchmarks/RESULTS.md ('Human-size run')")
    a = ap.parse_args()
    {"make-inputs": make_inputs, "run": run, "plan": plan}[a.cmd](a)


if __name__ == "__main__":
    main()
