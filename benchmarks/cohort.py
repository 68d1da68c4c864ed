"""Cohort-level CPU benchmark: genotype conversion (variants/s) and level 6 (individuals/s), with the
extrapolation to a biobank (500K individuals x 1M variants).

    OMP_NUM_THREADS=2 python benchmarks/cohort.py [--threads 2] [--individuals 8] \
        [--json benchmarks/results/cohort_cpu.json]

Data: the real 1000 Genomes chr20 demo VCFs (300 phased samples; 203 samples whose FORMAT mixes GT and
GT:PS, which takes the general parser). Each measurement runs in its own process (peak RSS).
1. Conversion of the whole VCF vs a third of it: throughput and peak memory (streaming: the peak must
   not grow with the number of variants).
2. Conversion of a SYNTHETIC wide VCF (real records, the 300 real sample columns repeated) to get the
   cost per genotype when samples dominate (biobank width); the extrapolation uses it.
3. Level 6 with the default model (dim 256, 16 heads, window 200, 8 global tokens, 1 layer) on all kept
   variants, `--individuals` individuals, and on half the variants (to check time ~ variants).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import run_meta

ROOT = Path(__file__).resolve().parents[1]
PHASED = ROOT / "data/demo/1kg_chr20/reference.vcf.gz"
UNPHASED = ROOT / "data/demo/1kg_chr20/unphased.vcf.gz"
PEAK = "import resource, json; peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"


def _child(code: str, threads: int) -> dict:
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def convert(vcf: Path, out: str, regions, threads: int) -> dict:
    code = f"""
import time, json
from genoattn.io.vcf import convert_vcf
t, c = time.time(), time.process_time()
s = convert_vcf({str(vcf)!r}, {out!r}, regions={regions!r})
dt, cpu = time.time() - t, time.process_time() - c
{PEAK}
import zarr
S = zarr.open_group({out!r}, mode='r')['sample_id'].shape[0]
print(json.dumps({{"vcf": {vcf.name!r}, "regions": {regions!r}, "records": s["records"], "kept": s["kept"],
                  "samples": S, "seconds": dt, "records_per_s": s["records"] / dt,
                  "genotypes_per_s": s["records"] * S / dt, "cpu_seconds": cpu,
                  "genotypes_per_cpu_s": s["records"] * S / cpu, "peak_rss_mb": peak}}))
"""
    return _child(code, threads)


def wide_vcf(path: Path, copies: int, records: int) -> int:
    """SYNTHETIC wide VCF: the first `records` records of the real phased VCF with its 300 sample columns
    repeated `copies` times (sample names suffixed), to measure conversion cost per genotype at biobank
    width. Returns the number of samples."""
    import pysam

    with pysam.VariantFile(str(PHASED)) as vf:
        names = list(vf.header.samples)
        head = [h for h in str(vf.header).splitlines() if not h.startswith("#CHROM")]
        cols = "\t".join(f"{n}_{k}" for k in range(copies) for n in names)
        lines = head + ["#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + cols]
        for i, rec in enumerate(vf.fetch("20")):
            if i >= records:
                break
            parts = str(rec).rstrip("\n").split("\t", 9)
            lines.append("\t".join(parts[:9]) + "\t" + "\t".join([parts[9]] * copies))
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True, csi=True)
    plain.unlink()
    return len(names) * copies


def level6(genotypes: str, ld: str, n: int, threads: int, variants: int | None = None) -> dict:
    code = f"""
import time, json, numpy as np, torch
torch.set_num_threads({threads})
from genoattn.config import defaults
from genoattn.levels.cohort import embed_samples
opts = defaults("levels.level6")
ld_opts = opts["ld_blocks"]
g, ld = {genotypes!r}, {ld!r}
if {variants!r}:
    # a store restricted to the first `variants` variants (whole LD blocks)
    import zarr
    from genoattn.ld import write_ld_blocks
    from genoattn.io.store import atomic_store
    src = zarr.open_group(g, mode='r')
    sub = g + '.sub'
    with atomic_store(sub, attrs=dict(src.attrs)) as w:
        for name in ('call_genotype', 'variant_contig', 'variant_position', 'variant_allele'):
            a = src[name][:{variants!r}]
            dims = src[name].metadata.dimension_names
            w.write(name, a if a.dtype.kind != 'T' else a.astype(object), dims=dims)
        w.write('contig_id', src['contig_id'][:].astype(object), dims=('contigs',))
        w.write('sample_id', src['sample_id'][:].astype(object), dims=('samples',))
    write_ld_blocks(sub, sub + '.ld', ld_opts)
    g, ld = sub, sub + '.ld'
embed_samples(g, ld, (0, 1), opts, device='cpu')  # warm-up
t, c = time.time(), time.process_time()
res, ident, info = embed_samples(g, ld, (0, {n}), opts, device='cpu')
dt, cpu = time.time() - t, time.process_time() - c
{PEAK}
print(json.dumps({{"individuals": {n}, "variants": info["n_variants"], "seconds": dt,
                  "individuals_per_s": {n} / dt, "seconds_per_individual": dt / {n},
                  "us_per_individual_variant": 1e6 * dt / {n} / info["n_variants"], "cpu_seconds": cpu,
                  "cpu_us_per_individual_variant": 1e6 * cpu / {n} / info["n_variants"],
                  "parameters": ident["parameters"], "peak_rss_mb": peak}}))
"""
    return _child(code, threads)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--individuals", type=int, default=8)
    ap.add_argument("--wide-copies", type=int, default=50, help="synthetic wide VCF: 300 samples x this")
    ap.add_argument("--wide-records", type=int, default=500)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    begun = run_meta.begin()
    out = {"machine": f"{platform.processor() or platform.machine()}, {a.threads} thread(s)"}
    with tempfile.TemporaryDirectory() as tmp:
        out["convert_phased_all"] = convert(PHASED, f"{tmp}/p.zarr", None, a.threads)
        out["convert_phased_third"] = convert(PHASED, f"{tmp}/p3.zarr", ["20:1000000-2000000"], a.threads)
        out["convert_unphased_all"] = convert(UNPHASED, f"{tmp}/u.zarr", None, a.threads)
        wide = Path(tmp) / "wide.vcf.gz"
        n_wide = wide_vcf(wide, a.wide_copies, a.wide_records)
        out["convert_wide_synthetic"] = convert(wide, f"{tmp}/w.zarr", None, a.threads)
        out["convert_wide_synthetic"]["note"] = f"SYNTHETIC: real records, 300 real samples x {a.wide_copies} copies"
        from genoattn.config import defaults
        from genoattn.ld import write_ld_blocks
        write_ld_blocks(f"{tmp}/p.zarr", f"{tmp}/p.ld.zarr", defaults("levels.level6")["ld_blocks"])
        out["level6_all"] = level6(f"{tmp}/p.zarr", f"{tmp}/p.ld.zarr", a.individuals, a.threads)
        half = out["convert_phased_all"]["kept"] // 2
        out["level6_half"] = level6(f"{tmp}/p.zarr", f"{tmp}/p.ld.zarr", a.individuals, a.threads, half)

    # extrapolation: conversion is linear in genotypes, level 6 linear in variants per individual
    N, V = 500_000, 1_000_000
    # CPU time, not wall time: the development machine is shared, wall time inflates with its load
    gps = out["convert_wide_synthetic"]["genotypes_per_cpu_s"]  # per-genotype cost at biobank width
    cpu_spi = out["level6_all"]["cpu_us_per_individual_variant"] * 1e-6 * V
    spi = out["level6_all"]["us_per_individual_variant"] * 1e-6 * V
    out["extrapolation_500k_x_1m"] = {
        "conversion_core_hours": N * V / gps / 3600,
        "level6_wall_seconds_per_individual": spi,
        "level6_cpu_seconds_per_individual": cpu_spi,
        "level6_core_hours": N * cpu_spi / 3600,
        "call_genotype_bytes_uncompressed": N * V * 2,
        "level6_activation_gb_per_individual": V * 256 * 4 * 10 / 1e9,
    }
    out["meta"] = run_meta.meta(begun, threads=a.threads)
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
