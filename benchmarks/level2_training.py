"""Level 2 on held-out chromosomes: the trained codon layer against codon-count models.

    python benchmarks/level2_training.py --train-dir results/yeast_R64/train/level2 \
        --tokens results/yeast_R64/tokens.zarr --annotation results/yeast_R64/annotation.parquet \
        [--level1-checkpoint data/demo/checkpoints/level1/model.safetensors] [--json benchmarks/results/level2_training.json]

The results go to TRAIN_DIR/heldout.json (the report's held-out table shows them beside that checkpoint)
and to --json.

Scored in this one run on the same hidden codons (genoattn.training.masked_codons: 15 % of the
annotated-frame codons of every coding exon of the test chromosomes, seeded; their bases hidden from
level 1 and from every codon token that covers them):

* codon usage: the frequency of each of the 64 codons among the annotated-frame codons of the training
  chromosomes (what a codon-usage table predicts);
* neighbouring codons: P(codon | previous, next codon of the same exon), fitted on the training
  chromosomes, Dirichlet-smoothed towards P(codon | previous) and that towards codon usage (strength
  chosen on validation); a hidden or absent neighbour backs off to the other side, then to usage;
* the trained level-2 layer with its head, on level-1 embeddings of the config's level 1.

Perplexity = exp(mean cross-entropy over the hidden codons, nats; ln 64 = 4.16 is guessing).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def frame0_classes(obj, ex):
    from genoattn.training.masked_codons import codon_class

    rows = np.flatnonzero(ex.frame == 0)
    return rows, codon_class(obj.arrays[ex.contig][ex.bases[rows]], ex.minus)


def fit_counts(obj):
    uni = np.zeros(64)
    left = np.zeros((64, 64))       # [prev, cur]
    right = np.zeros((64, 64))      # [next, cur]
    both = np.zeros((64, 64, 64))   # [prev, next, cur]
    for ex in obj.exons["train"]:
        _, c = frame0_classes(obj, ex)
        ok = c >= 0
        np.add.at(uni, c[ok], 1)
        for a, b in zip(c[:-1], c[1:]):
            if a >= 0 and b >= 0:
                left[a, b] += 1
                right[b, a] += 1
        for a, b, d in zip(c[:-2], c[1:-1], c[2:]):
            if a >= 0 and b >= 0 and d >= 0:
                both[a, d, b] += 1
    return uni, left, right, both


def neighbour_logp(counts, prev, nxt, kappa):
    uni, left, right, both = counts
    p_uni = (uni + 0.5) / (uni.sum() + 32)
    if prev >= 0 and nxt >= 0:
        p_l = (left[prev] + kappa * p_uni) / (left[prev].sum() + kappa)
        return np.log((both[prev, nxt] + kappa * p_l) / (both[prev, nxt].sum() + kappa))
    if prev >= 0:
        return np.log((left[prev] + kappa * p_uni) / (left[prev].sum() + kappa))
    if nxt >= 0:
        return np.log((right[nxt] + kappa * p_uni) / (right[nxt].sum() + kappa))
    return np.log(p_uni)


def count_model_scores(obj, split, counts, kappa):
    """(usage log p, neighbour log p, targets) over the hidden codons of ``split``'s held-out examples."""
    uni = counts[0]
    log_uni = np.log((uni + 0.5) / (uni.sum() + 32))
    lu, ln, tg = [], [], []
    for ex, example in zip(obj.exons[split], obj.heldout(split)):
        if not example:
            continue
        rows, cls = frame0_classes(obj, ex)
        hidden = example["target"][rows] >= 0
        visible = np.where(hidden, -1, cls)
        for k in np.flatnonzero(hidden):
            prev = visible[k - 1] if k > 0 else -1
            nxt = visible[k + 1] if k + 1 < len(rows) else -1
            lu.append(log_uni)
            ln.append(neighbour_logp(counts, prev, nxt, kappa))
            tg.append(cls[k])
    return np.stack(lu), np.stack(ln), np.array(tg)


def score(logp, tgt):
    ce = -logp[np.arange(len(tgt)), tgt]
    return {"perplexity": round(float(math.exp(ce.mean())), 3), "accuracy": round(float((logp.argmax(1) == tgt).mean()), 4),
            "codons": int(len(tgt))}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-dir", required=True, help="model.safetensors + head.safetensors + model.json of level 2")
    p.add_argument("--tokens", required=True)
    p.add_argument("--annotation", required=True)
    p.add_argument("--level1-checkpoint", help="the level-1 checkpoint level 2 was trained on (default: model.json's)")
    p.add_argument("--json", help="write the results here too (they are always written to TRAIN_DIR/heldout.json)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    from genoattn.config import defaults
    from genoattn.levels.codon import CodonAttention
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module
    from genoattn.training.masked_codons import MaskedCodons

    torch.set_num_threads(a.threads)
    t0 = time.time()
    d = Path(a.train_dir)
    info = json.loads((d / "model.json").read_text())
    cfg = info["identity"]["config"]
    l1 = {**defaults("levels.level1"), **cfg["levels"]["level1"]}
    l2 = {**defaults("levels.level2"), **cfg["levels"]["level2"]}
    ann = {**defaults("levels.annotation"), **cfg["levels"]["annotation"]}
    level1_checkpoint = a.level1_checkpoint or l1.get("checkpoint")  # the file the training config named
    if level1_checkpoint == "train":
        raise SystemExit("level 2 was trained on the workflow's own level-1 training output: name that file with "
                         "--level1-checkpoint results/<reference>/train/level1/model.safetensors")
    level1, l1_ident = build_module(lambda: level1_module(l1), "level1", level1_checkpoint, l1["seed"])
    if info["identity"].get("level1_checkpoint_sha256") and \
            l1_ident.get("checkpoint_sha256") != info["identity"]["level1_checkpoint_sha256"]:
        raise SystemExit(f"level-1 checkpoint {level1_checkpoint} is not the level 1 this level 2 was trained on "
                         f"(sha256 {info['identity']['level1_checkpoint_sha256'][:12]}...)")
    module, ident = build_module(lambda: CodonAttention(l1["dim"], l2["dim"], l2["heads"], l2["layers"]), "level2",
                                 str(d / "model.safetensors"))
    obj = MaskedCodons(module, level1, l1, a.tokens, a.annotation, info["split"], ann,
                       {**defaults("training.level2"), **cfg["training"]["level2"]})
    obj.head.load_state_dict(load_file(d / "head.safetensors"))
    module.eval()
    obj.head.eval()
    counts = fit_counts(obj)
    result = {"train_dir": str(d), "split": info["split"], "model": {
        "steps": info["steps"], "dim": l2["dim"], "heads": l2["heads"], "layers": l2["layers"],
        "parameters": ident["parameters"], "checkpoint_sha256": ident["checkpoint_sha256"],
        "level1": l1_ident.get("checkpoint", "seeded (untrained)"), "level1_trained": l1_ident["trained"]},
        "rows": {}}
    kappas = [5, 20, 100, 500, 2000]
    val = {k: score(*count_model_scores(obj, "validation", counts, k)[1:]) for k in kappas}
    best = min(kappas, key=lambda k: val[k]["perplexity"])
    lu, ln, tg = count_model_scores(obj, "test", counts, best)
    result["rows"]["codon usage (training chromosomes)"] = score(lu, tg)
    result["rows"][f"neighbouring codons (kappa {best}, chosen on validation)"] = score(ln, tg)
    total, hits, n = 0.0, 0, 0
    lps, tgs = [], []
    with torch.no_grad():
        examples = [e for e in obj.heldout("test") if e]
        for i in range(0, len(examples), 32):
            b = obj.pack(examples[i:i + 32])
            logp = F.log_softmax(obj.forward(module, obj.head, b), -1)
            t = b["target"]
            sel = t >= 0
            lps.append(logp[sel].numpy())
            tgs.append(t[sel].numpy())
    result["rows"]["genoattn level 2, trained"] = score(np.concatenate(lps), np.concatenate(tgs))
    result["seconds"] = round(time.time() - t0, 1)
    print(f"test chromosomes {', '.join(info['split']['test'])}: hidden codons, perplexity / accuracy")
    for label, r in result["rows"].items():
        print(f"  {label:55s} {r['perplexity']:8.3f}  {r['accuracy']:.4f}  ({r['codons']:,} codons)")
    text = json.dumps(result, indent=1) + "\n"
    (d / "heldout.json").write_text(text)  # beside the checkpoint: the report's held-out table reads it
    if a.json:
        Path(a.json).write_text(text)
    return result


if __name__ == "__main__":
    main()
