"""Level-1 variant scores by consequence class, on genes of the held-out test chromosomes.

    python benchmarks/effects_llr.py --checkpoint data/demo/checkpoints/level1/model.safetensors \
        --tokens results/yeast_R64/tokens.zarr --annotation results/yeast_R64/annotation.parquet \
        --genes 40 --json benchmarks/results/effects_llr.json

Every possible SNV of the coding exons of ``--genes`` protein-coding genes drawn (seeded) from the test
chromosomes of the checkpoint's split (model.json; yeast chrXI, chrXIII, chrXV: never trained on) gets
its consequence (:mod:`genoattn.effects.consequence`) and two scores, measured in this one run:

* genoattn level 1: ``llr = log P(alt) - log P(ref)`` of the masked-base head with only the variant base
  masked, mean of both strands (:func:`genoattn.effects.sequence.snv_llr`, what `snakemake effects` writes);
* the bidirectional k-mer count model (k = 3 bases each side, the best k on validation in
  benchmarks/level1_training.py), fitted here on the training chromosomes: the same ratio from counts.

A model that learned coding constraint ranks stop_gained < missense < synonymous (mean LLR). Reported per
class: number of SNVs, mean LLR with its standard error (over genes: SNVs of one gene are not independent),
and AUROC of separating synonymous from missense and from stop_gained by the score. Also the LLR throughput
(SNVs/s on this machine, all passes included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CLASSES = ("stop_gained", "start_lost", "stop_lost", "missense", "stop_retained", "synonymous")


def auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(score of a ``pos`` element > score of a ``neg`` element) (ties count half)."""
    if not len(neg) or not len(pos):
        return float("nan")
    allv = np.concatenate([neg, pos])
    order = np.argsort(allv, kind="stable")
    sv = allv[order]
    r = np.empty(len(allv))
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rp = r[len(neg):].sum()  # tied values share their mean rank
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def class_table(df, score: str) -> dict:
    out = {}
    for c in CLASSES:
        sub = df[df["class"] == c]
        if not len(sub):
            continue
        per_gene = sub.groupby("gene")[score].mean()
        se = float(per_gene.std(ddof=1) / np.sqrt(len(per_gene))) if len(per_gene) > 1 else float("nan")
        out[c] = {"snvs": int(len(sub)), "genes": int(len(per_gene)), "mean": round(float(sub[score].mean()), 4),
                  "se_over_genes": round(se, 4)}
    syn = df.loc[df["class"] == "synonymous", score].to_numpy()
    out["auroc_synonymous_vs_missense"] = round(auroc(df.loc[df["class"] == "missense", score].to_numpy(), syn), 4)
    out["auroc_synonymous_vs_stop_gained"] = round(auroc(df.loc[df["class"] == "stop_gained", score].to_numpy(), syn), 4)
    means = {c: out[c]["mean"] for c in ("stop_gained", "missense", "synonymous") if c in out}
    out["ranks_stop_missense_synonymous"] = bool(len(means) == 3 and means["stop_gained"] < means["missense"]
                                                 < means["synonymous"])
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="level-1 model.safetensors (head.safetensors and model.json beside it)")
    p.add_argument("--tokens", required=True)
    p.add_argument("--annotation", required=True, help="annotation.parquet of the reference")
    p.add_argument("--genes", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args(argv)

    import torch

    from genoattn import transcripts as tx
    from genoattn.config import defaults
    from genoattn.effects import consequence as cq
    from genoattn.effects import sequence as sq
    from genoattn.effects.saturation import every_snv, pick_genes
    from genoattn.effects.variants import letters_of
    from genoattn.io.annotation import read_annotation
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module
    from genoattn.training.masked_bases import ACGT_INDEX, load_contigs
    from level1_training import kmer_tables, _context_codes

    torch.set_num_threads(a.threads)
    info = json.loads((Path(a.checkpoint).with_name("model.json")).read_text())
    split = info["split"]
    cfg = {**defaults("levels.level1"), **info["identity"]["config"]["levels"]["level1"]}
    module, ident = build_module(lambda: level1_module(cfg), "level1", a.checkpoint)
    head, note = sq.load_head(a.checkpoint, module.dim, "cpu")
    if head is None:
        raise SystemExit(note)
    ann = read_annotation(a.annotation)
    model = tx.build_transcripts(ann, select="all", contigs=split["test"])
    genes = pick_genes([t for t in model.transcripts if t.contig in split["test"]], a.genes, a.seed,
                       with_introns=a.genes // 10)
    tokens = load_contigs(a.tokens, split["test"])
    letters = {c: letters_of(tokens[c]) for c in tokens}
    snvs = every_snv(genes, letters)
    by_contig = {c: cq.TranscriptIndex([t for t in model.transcripts if t.contig == c]) for c in split["test"]}
    gene_of = {}
    classes = []
    for c, pos, ref, alt in zip(snvs["contig"], snvs["pos"], snvs["ref"], snvs["alt"]):
        cons = cq.variant_consequences(by_contig[c].near(pos - 1, pos), pos - 1, ref, alt, letters[c])
        classes.append(cons[0].most_severe)
        gene_of.setdefault((c, pos), cons[0].gene_id)
    snvs["class"] = classes
    snvs["gene"] = [gene_of[(c, p)] for c, p in zip(snvs["contig"], snvs["pos"])]
    print(f"{len(genes)} genes ({sum(len(t.exons) > 1 for t in genes)} spliced), {len(snvs):,} SNVs: "
          + ", ".join(f"{k} {v}" for k, v in snvs["class"].value_counts().items()), flush=True)

    # the k-mer baseline, fitted on the training chromosomes
    k = 3
    train = load_contigs(a.tokens, split["train"])
    table = kmer_tables(train, [k], ACGT_INDEX)[k]
    km = np.zeros(len(snvs))
    for c in split["test"]:
        sel = np.flatnonzero(snvs["contig"].to_numpy() == c)
        if not len(sel):
            continue
        idx = ACGT_INDEX[tokens[c]]
        code, ok = _context_codes(idx, k)
        pos0 = snvs["pos"].to_numpy()[sel] - 1
        counts = table[code[pos0]] + 0.5
        logp = np.log(counts / counts.sum(1, keepdims=True))
        r = np.array([sq.BASE_INDEX[b] for b in snvs["ref"].to_numpy()[sel]])
        al = np.array([sq.BASE_INDEX[b] for b in snvs["alt"].to_numpy()[sel]])
        km[sel] = np.where(ok[pos0], logp[np.arange(len(sel)), al] - logp[np.arange(len(sel)), r], 0.0)
    snvs["kmer_llr"] = km

    t0 = time.time()
    llr = np.zeros(len(snvs), np.float32)
    done = 0
    for c in split["test"]:
        sel = np.flatnonzero(snvs["contig"].to_numpy() == c)
        if not len(sel):
            continue
        starts = snvs["pos"].to_numpy()[sel] - 1
        llr[sel], _, _ = sq.snv_llr(module, head, tokens[c], starts, list(snvs["ref"].to_numpy()[sel]),
                                    list(snvs["alt"].to_numpy()[sel]), module.window, "cpu")
        done += len(sel)
        print(f"  LLR {c}: {done:,}/{len(snvs):,} SNVs, {time.time() - t0:.0f} s", flush=True)
    seconds = time.time() - t0
    snvs["llr"] = llr
    result = {"checkpoint": a.checkpoint, "checkpoint_sha256": ident["checkpoint_sha256"],
              "steps": info["steps"], "split": split, "genes": len(genes),
              "spliced_genes": int(sum(len(t.exons) > 1 for t in genes)), "snvs": int(len(snvs)),
              "seed": a.seed, "threads": a.threads,
              "llr_seconds": round(seconds, 1), "llr_snvs_per_s": round(len(snvs) / seconds, 1),
              "genoattn_level1": class_table(snvs, "llr"), "kmer_k3": class_table(snvs, "kmer_llr")}
    for label in ("genoattn_level1", "kmer_k3"):
        r = result[label]
        print(f"\n{label}: mean LLR by class (SE over genes)")
        for c in CLASSES:
            if c in r:
                print(f"  {c:15s} {r[c]['snvs']:7,d}  {r[c]['mean']:+.4f} ({r[c]['se_over_genes']:.4f})")
        print(f"  AUROC synonymous vs missense {r['auroc_synonymous_vs_missense']}, vs stop_gained "
              f"{r['auroc_synonymous_vs_stop_gained']}; ranks stop < missense < synonymous: "
              f"{r['ranks_stop_missense_synonymous']}")
    print(f"\nLLR: {len(snvs):,} SNVs in {seconds:.0f} s ({len(snvs) / seconds:.1f} SNVs/s, {a.threads} threads)")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
