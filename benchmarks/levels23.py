"""Benchmark levels 2 (codons) and 3 (exons) on the CPU on real yeast transcripts.

Real annotation (R64-2-1 GTF) and real tokens; the level-1 per-base embeddings are synthetic
(seeded random, float16 as the level-1 default) because only the compute of levels 2-3 is
measured here. Default model sizes (level 2: dim 128 / 8 heads, level 3: dim 256 / 16 heads).

Measures, forward only, torch.no_grad, float32:
* level 2 codons/s with varlen packing (tokens_per_call codon tokens per call) vs one module
  call per exon (inputs read once beforehand, compute only);
* level 3 exons/s (pooling + exon attention) packed vs one call per transcript (compute only);
* end-to-end run() of both levels (store writing included);
and extrapolates to the whole demo genome by its codon / exon counts.

    OMP_NUM_THREADS=2 python benchmarks/levels23.py --contigs chrI chrVI --threads 2 --repeat 1 \
        --json benchmarks/results/levels23_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import run_meta

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # tests/_levels23.py: the tests' real-data helpers

from genoattn import transcripts as tx  # noqa: E402
from genoattn.levels import codon as L2  # noqa: E402
from genoattn.levels import exon as L3  # noqa: E402
from tests._levels23 import (contig_tokens, exon_union_positions, write_level1_like,  # noqa: E402
                             yeast_annotation)


def best_of(fn, repeat=2):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contigs", nargs="+", default=["chrI"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--json", default=None, help="also write the results here (e.g. benchmarks/results/levels23_cpu.json)")
    args = ap.parse_args()
    begun = run_meta.begin()
    torch.set_num_threads(args.threads)
    ann = yeast_annotation()
    genome = tx.build_transcripts(ann, select="canonical")
    g_ex = tx.exon_table(genome.transcripts)
    g_cod = tx.codon_table(genome.transcripts, g_ex)
    results = {"contigs": args.contigs, "threads": args.threads, "genome_codons": len(g_cod),
               "genome_exons": len(g_ex), "genome_transcripts": len(genome.transcripts), "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="bench23-"))
    from genoattn.config import defaults
    # the schema's defaults (seeded weights: the compute does not depend on them)
    cfg = {"levels": {"level2": dict(defaults("levels.level2"), checkpoint=None),
                      "level3": dict(defaults("levels.level3"), checkpoint=None),
                      "annotation": defaults("levels.annotation")},
           "kernels": dict(defaults("kernels"), device="cpu")}
    tot = {"codons": 0, "exons": 0, "l2_packed": 0.0, "l2_single": 0.0, "l3_packed": 0.0, "l3_single": 0.0,
           "l2_run": 0.0, "l3_run": 0.0}
    for contig in args.contigs:
        tokens = contig_tokens(contig)
        pos = exon_union_positions(ann, contig)
        emb = np.random.default_rng(0).standard_normal((len(pos), 128)).astype(np.float16)
        l1 = write_level1_like(tmp / f"{contig}.l1.zarr", contig, tokens, pos, emb, dtype=np.float16)
        bases = L2.Level1Bases(l1)
        model = tx.build_transcripts(ann, select="canonical", contigs=[contig])
        exons = tx.exon_table(model.transcripts)
        codons = tx.codon_table(model.transcripts, exons)
        torch.manual_seed(0)
        m2 = L2.CodonAttention(128, 128, 8).eval()
        counts = np.diff(codons.exon_offset)
        batches = L2.batches_by_tokens(counts, 65536)
        coding = [i for i in range(len(exons)) if counts[i]]

        emb_all, comp_all = L2.codon_inputs(codons, slice(0, len(codons)), bases)  # inputs read once, untimed
        T = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)
        emb_t, comp_t = T(emb_all), T(comp_all)
        frame_t, off_t = T(codons.frame, torch.int64), T(codons.cds_offset, torch.int64)
        cu_all = T(codons.exon_offset, torch.int64)

        def l2_packed():  # one varlen call per tokens_per_call codons (the level's way)
            with torch.no_grad():
                for a, b in batches:
                    ca, cb = int(cu_all[a]), int(cu_all[b])
                    m2(emb_t[ca:cb], comp_t[ca:cb], frame_t[ca:cb], off_t[ca:cb], cu_all[a:b + 1] - ca,
                       backend=args.backend)

        def l2_single():  # one call per exon
            with torch.no_grad():
                for i in coding:
                    ca, cb = int(cu_all[i]), int(cu_all[i + 1])
                    m2(emb_t[ca:cb], comp_t[ca:cb], frame_t[ca:cb], off_t[ca:cb], torch.tensor([0, cb - ca]),
                       backend=args.backend)

        t_p = best_of(l2_packed, args.repeat)
        t_s = best_of(l2_single, args.repeat)
        t0 = time.perf_counter()
        L2.run(ann, l1, str(tmp / f"{contig}.l2.zarr"), contig, cfg, device="cpu")
        t_run2 = time.perf_counter() - t0
        l2c = L3.Level2Codons(tmp / f"{contig}.l2.zarr")
        torch.manual_seed(0)
        m3 = L3.ExonAttention(128, 128, 256, 16).eval()
        ntx = len(model.transcripts)

        packed_in = L3.exon_inputs(exons, l2c, bases, (0, ntx))  # inputs read once, untimed
        single_in = [L3.exon_inputs(exons, l2c, bases, (t, t + 1)) for t in range(ntx)]

        def l3_packed():  # all transcripts of the contig: one pooling pass, one varlen call
            with torch.no_grad():
                m3(**packed_in, backend=args.backend)

        def l3_single():  # one call per transcript
            with torch.no_grad():
                for d in single_in:
                    m3(**d, backend=args.backend)

        t3_p = best_of(l3_packed, args.repeat)
        t3_s = best_of(l3_single, args.repeat)
        t0 = time.perf_counter()
        L3.run(ann, l1, str(tmp / f"{contig}.l2.zarr"), str(tmp / f"{contig}.l3.zarr"), contig, cfg, device="cpu")
        t_run3 = time.perf_counter() - t0
        row = {"contig": contig, "transcripts": ntx, "exons": len(exons), "coding_exons": len(coding),
               "codons": len(codons), "max_codons_per_exon": int(counts.max()),
               "l2_packed_s": t_p, "l2_per_exon_s": t_s, "l3_packed_s": t3_p, "l3_per_transcript_s": t3_s,
               "l2_run_s": t_run2, "l3_run_s": t_run3}
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        tot["codons"] += len(codons)
        tot["exons"] += len(exons)
        for k_src, k in (("l2_packed_s", "l2_packed"), ("l2_per_exon_s", "l2_single"), ("l3_packed_s", "l3_packed"),
                         ("l3_per_transcript_s", "l3_single"), ("l2_run_s", "l2_run"), ("l3_run_s", "l3_run")):
            tot[k] += row[k_src]
    s = {"codons_per_s_packed": tot["codons"] / tot["l2_packed"],
         "codons_per_s_per_exon_calls": tot["codons"] / tot["l2_single"],
         "exons_per_s_packed": tot["exons"] / tot["l3_packed"],
         "exons_per_s_per_transcript_calls": tot["exons"] / tot["l3_single"],
         "codons_per_s_run": tot["codons"] / tot["l2_run"], "exons_per_s_run": tot["exons"] / tot["l3_run"]}
    s["genome_level2_s_extrapolated"] = results["genome_codons"] / s["codons_per_s_run"]
    s["genome_level3_s_extrapolated"] = results["genome_exons"] / s["exons_per_s_run"]
    results["summary"] = s
    results["meta"] = run_meta.meta(begun, threads=args.threads, repeat=args.repeat)
    print(json.dumps(s, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
