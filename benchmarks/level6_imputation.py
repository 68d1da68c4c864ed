"""Imputation of masked genotypes: Beagle 5.4, allele frequency and the trained level 6, on one masked VCF.

    python benchmarks/level6_imputation.py [--config config/config.yaml] \
        [--panel data/demo/1kg_chr20/reference.vcf.gz] [--target data/demo/1kg_chr20/unphased.vcf.gz] \
        [--checkpoint data/demo/checkpoints/level6/model.safetensors] [--threads 2] \
        [--max-sites N --max-samples N] [--json benchmarks/results/level6_imputation.json]

One run, one mask (the numbers of every method come from the same hidden calls):

* truth: the target cohort's biallelic SNVs with MAF >= --min-maf among its samples (the first
  --max-samples samples and --max-sites such sites, for a small slice);
* mask: a seeded --mask-fraction of the called genotypes set to ./. -> masked.vcf.gz (bgzip, CSI);
* Beagle 5.4 (`beagle`, Debian package) with gt=masked.vcf.gz, without and with ref= the panel (phased,
  other individuals); allele frequency (each site's mean observed dosage); level 6 (`genoattn impute`'s
  code on the masked VCF converted as a cohort, with the config's levels.level6 and --checkpoint). The
  panel individuals are the ones level 6 was trained on; the target individuals are seen by no model.

Reported per method, over the hidden calls: pooled dosage r^2 (squared Pearson correlation of imputed
and true ALT dosage), mean per-variant dosage r^2 by MAF bin ([1 %, 5 %), [5 %, 20 %), [20 %, 50 %];
a constant prediction scores 0; variants whose hidden calls all have one genotype are left out),
genotype concordance of the hard call (GT), and the CPU time (user + system, children included) and
wall time of the imputation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAF_BINS = [(0.01, 0.05), (0.05, 0.20), (0.20, 0.5000001)]


# -- truth and mask --------------------------------------------------------------------------------------------
def read_truth(vcf: str, min_maf: float, max_sites: int | None, max_samples: int | None):
    """(sites [(contig, pos, ref, alt)], samples, dosage [sites, samples] int8 with -1 missing, header contigs)."""
    import pysam

    with pysam.VariantFile(vcf) as vf:
        samples = list(vf.header.samples)[:max_samples] if max_samples else list(vf.header.samples)
        vf.subset_samples(samples)
        contigs = [(c, vf.header.contigs[c].length) for c in vf.header.contigs]
        sites, rows = [], []
        for rec in vf:
            if len(rec.alts or ()) != 1 or len(rec.ref) != 1 or len(rec.alts[0]) != 1 or rec.alts[0] not in "ACGT":
                continue
            d = np.array([-1 if None in (s["GT"] or (None,)) or len(s["GT"]) != 2 else sum(a > 0 for a in s["GT"])
                          for s in rec.samples.values()], np.int8)
            called = d >= 0
            if not called.any():
                continue
            p = d[called].mean() / 2
            if min(p, 1 - p) < min_maf:
                continue
            sites.append((rec.chrom, rec.pos, rec.ref, rec.alts[0]))
            rows.append(d)
            if max_sites and len(sites) >= max_sites:
                break
    return sites, samples, np.array(rows, np.int8), contigs


def write_vcf(path: str, sites, samples, dosage: np.ndarray, contigs) -> None:
    """bgzipped VCF (GT only, unphased; -1 = ./.) + CSI index."""
    import pysam

    gt_text = np.array(["0/0", "0/1", "1/1", "./."], dtype=object)
    head = ["##fileformat=VCFv4.2"] + [f"##contig=<ID={c},length={n}>" if n else f"##contig=<ID={c}>"
                                       for c, n in contigs]
    head += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "#" + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples])]
    with pysam.BGZFile(path, "wb") as out:
        out.write(("\n".join(head) + "\n").encode())
        lines = ["\t".join([c, str(p), ".", r, a, ".", "PASS", ".", "GT", *gt_text[np.where(d < 0, 3, d)]])
                 for (c, p, r, a), d in zip(sites, dosage)]
        out.write(("\n".join(lines) + "\n").encode())
    pysam.tabix_index(path, preset="vcf", csi=True, force=True)


def pysam_index(vcf: str) -> None:
    import pysam

    pysam.tabix_index(vcf, preset="vcf", csi=True, force=True)


def read_dosages(vcf: str, sites, samples) -> tuple[np.ndarray, np.ndarray]:
    """(DS or GT dosage [sites, samples] float, hard-call dosage [sites, samples]) of an imputed VCF; NaN where
    the VCF lacks the site."""
    import pysam

    index = {s: i for i, s in enumerate(sites)}
    ds = np.full((len(sites), len(samples)), np.nan)
    hard = np.full((len(sites), len(samples)), np.nan)
    with pysam.VariantFile(vcf) as vf:
        vf.subset_samples(samples)
        order = [list(vf.header.samples).index(s) for s in samples] if list(vf.header.samples) != samples else None
        for rec in vf:
            i = index.get((rec.chrom, rec.pos, rec.ref, (rec.alts or ("",))[0]))
            if i is None:
                continue
            vals = list(rec.samples.values())
            if order is not None:
                vals = [vals[k] for k in order]
            has_ds = "DS" in rec.format
            for j, s in enumerate(vals):
                gt = s["GT"]
                if gt and None not in gt:
                    hard[i, j] = sum(a > 0 for a in gt)
                v = s["DS"] if has_ds else None
                ds[i, j] = (v[0] if isinstance(v, tuple) else v) if v is not None else hard[i, j]
    return ds, hard


# -- metrics ----------------------------------------------------------------------------------------------------
def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(y) == 0:
        return float("nan")
    if np.std(x) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def score(ds: np.ndarray, hard: np.ndarray, truth: np.ndarray, hidden: np.ndarray, maf: np.ndarray) -> dict:
    """Metrics over the hidden calls (see the module docstring)."""
    sel = hidden & np.isfinite(ds)
    out = {"calls": int(hidden.sum()), "calls_imputed": int(sel.sum()),
           "pooled_r2": round(_r2(ds[sel], truth[sel].astype(float)), 4),
           "concordance": round(float((hard[sel] == truth[sel]).mean()), 4) if sel.any() else float("nan")}
    per = np.array([_r2(ds[v, sel[v]], truth[v, sel[v]].astype(float)) for v in range(len(truth))])
    for lo, hi in MAF_BINS:
        b = (maf >= lo) & (maf < hi) & np.isfinite(per)
        key = f"r2_maf_{lo:g}_{min(hi, 0.5):g}"
        out[key] = round(float(per[b].mean()), 4) if b.any() else float("nan")
        out[f"variants_maf_{lo:g}_{min(hi, 0.5):g}"] = int(b.sum())
    return out


class Clock:
    """CPU (user + system of this process and its waited-for children) and wall time of a block."""

    def __enter__(self):
        self.t = time.time()
        self.c = self._cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.time() - self.t
        self.cpu = self._cpu() - self.c

    @staticmethod
    def _cpu() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


# -- methods ----------------------------------------------------------------------------------------------------
def run_beagle(beagle: str, masked: str, out_prefix: str, threads: int, seed: int, ref: str | None) -> str:
    cmd = [beagle, f"gt={masked}", f"out={out_prefix}", f"nthreads={threads}", f"seed={seed}"]
    if ref:
        cmd += [f"ref={ref}", "gp=true"]
    with open(f"{out_prefix}.stdout", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return f"{out_prefix}.vcf.gz"


def run_level6(masked: str, work: Path, config: dict, checkpoint: str, threads: int) -> tuple[str, dict]:
    """The masked VCF as a cohort (genotypes.zarr, no site filter), then genoattn's imputation of it."""
    import torch

    from genoattn.config import validate_config
    from genoattn.imputation import impute_cohort
    from genoattn.levels.cohort import run_genotypes

    torch.set_num_threads(threads)
    cfg = validate_config({"cohorts": {"masked": {"vcf": masked, "filters": {"maf": 0.0, "drop_monomorphic": False,
                                                                               "filter_pass": False}}}},
                          check_files=False)
    run_genotypes(cfg, "masked", str(work / "masked_genotypes.zarr"))
    opts = dict(config["levels"]["level6"])
    out = str(work / "level6.vcf.gz")
    info = impute_cohort(str(work / "masked_genotypes.zarr"), None, out, str(work / "level6.zarr"), opts, checkpoint,
                         device="cpu", cohort="masked")
    return out, info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml", help="levels.level6 options (and the checkpoint)")
    ap.add_argument("--panel", default=str(ROOT / "data/demo/1kg_chr20/reference.vcf.gz"),
                    help="phased reference panel (Beagle ref=)")
    ap.add_argument("--target", default=str(ROOT / "data/demo/1kg_chr20/unphased.vcf.gz"),
                    help="cohort whose calls are masked")
    ap.add_argument("--checkpoint", help="level-6 checkpoint (default: the config's levels.level6.checkpoint)")
    ap.add_argument("--mask-fraction", type=float, default=0.10)
    ap.add_argument("--min-maf", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-sites", type=int)
    ap.add_argument("--max-samples", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beagle", default="beagle", help="Beagle 5.4 command (Debian: apt-get install beagle)")
    ap.add_argument("--work-dir", default="benchmarks/results/level6_imputation_work")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from genoattn.config import load_config

    config = load_config(args.config)
    checkpoint = args.checkpoint or config["levels"]["level6"]["checkpoint"]
    if not checkpoint or checkpoint == "train":
        cohort = next((c for c, x in config["cohorts"].items() if x["held_out"]), None)
        checkpoint = str(Path(config["results"], cohort or "?", "train", "level6", "model.safetensors"))
    beagle = shutil.which(args.beagle)
    if beagle is None:
        print(f"{args.beagle}: not found. Fix: apt-get install beagle (Beagle 5.4, Debian), or --beagle PATH",
              file=sys.stderr)
        return 1
    work = Path(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    sites, samples, truth, contigs = read_truth(args.target, args.min_maf, args.max_sites, args.max_samples)
    called = truth >= 0
    rng = np.random.default_rng(args.seed)
    hidden = called & (rng.random(truth.shape) < args.mask_fraction)
    masked = np.where(hidden, -1, truth)
    maf_p = np.array([d[d >= 0].mean() / 2 for d in truth])
    maf = np.minimum(maf_p, 1 - maf_p)
    masked_vcf = str(work / "masked.vcf.gz")
    write_vcf(masked_vcf, sites, samples, masked, contigs)
    print(f"truth: {len(sites)} biallelic SNVs with MAF >= {args.min_maf} x {len(samples)} samples of {args.target}; "
          f"{int(hidden.sum())} of {int(called.sum())} calls hidden (seed {args.seed})", flush=True)

    results = {}
    for name, ref in (("Beagle 5.4, no panel", None), ("Beagle 5.4 + panel", args.panel)):
        with Clock() as c:
            out = run_beagle(beagle, masked_vcf, str(work / ("beagle_ref" if ref else "beagle")), args.threads,
                             args.seed, ref)
        pysam_index(out)
        ds, hard = read_dosages(out, sites, samples)
        results[name] = score(ds, hard, truth, hidden, maf) | {"cpu_s": round(c.cpu, 1), "wall_s": round(c.wall, 1)}
        print(name, results[name], flush=True)
    with Clock() as c:
        obs = masked >= 0
        p = np.where(obs, masked, 0).sum(axis=1) / np.maximum(obs.sum(axis=1), 1)
        ds = np.broadcast_to(p[:, None], truth.shape).astype(float)
        hard = np.rint(ds)
    results["allele frequency"] = score(ds, hard, truth, hidden, maf) | {"cpu_s": round(c.cpu, 2),
                                                                         "wall_s": round(c.wall, 2)}
    print("allele frequency", results["allele frequency"], flush=True)
    with Clock() as c:
        out, info = run_level6(masked_vcf, work, config, checkpoint, args.threads)
    ds, hard = read_dosages(out, sites, samples)
    results["genoattn level 6"] = score(ds, hard, truth, hidden, maf) | {"cpu_s": round(c.cpu, 1),
                                                                         "wall_s": round(c.wall, 1)}
    print("genoattn level 6", results["genoattn level 6"], flush=True)

    from genoattn.io.store import sha256_file

    report = {"target": args.target, "panel": args.panel, "checkpoint": checkpoint,
              "checkpoint_sha256": sha256_file(checkpoint), "sites": len(sites), "samples": len(samples),
              "hidden_calls": int(hidden.sum()), "mask_fraction": args.mask_fraction, "min_maf": args.min_maf,
              "seed": args.seed, "threads": args.threads, "beagle": beagle,
              "level6": {k: config["levels"]["level6"][k] for k in ("dim", "heads", "layers", "window", "n_global",
                                                                     "site_buckets")},
              "results": results, "command": " ".join(sys.argv)}
    print(markdown(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def markdown(report: dict) -> str:
    head = ("| method | pooled r² | r² MAF 1–5 % | r² MAF 5–20 % | r² MAF 20–50 % | concordance | CPU s | wall s |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = [f"| {name} | {r['pooled_r2']:.3f} | {r['r2_maf_0.01_0.05']:.3f} | {r['r2_maf_0.05_0.2']:.3f} | "
            f"{r['r2_maf_0.2_0.5']:.3f} | {r['concordance']:.3f} | {r['cpu_s']} | {r['wall_s']} |"
            for name, r in report["results"].items()]
    return "\n".join([head, *rows])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
