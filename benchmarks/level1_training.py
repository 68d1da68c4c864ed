"""Level 1 on held-out chromosomes: the trained layer against what a user would pick instead.

    python benchmarks/level1_training.py --train-dir results/yeast_R64/train/level1 \
        --tokens results/yeast_R64/tokens.zarr [--json benchmarks/results/level1_training.json]

The results go to TRAIN_DIR/heldout.json (the report's held-out table shows them beside that checkpoint)
and to --json.

Everything is scored in this one run on the same held-out bases of the test chromosomes of the split
the model was trained with (model.json; yeast: test chrXI, chrXIII, chrXV, validation chrXII, chrXIV,
chrXVI, training the other ten), under two masking protocols:

* grid (genoattn's held-out metric, :func:`genoattn.training.masked_bases.heldout_windows`): every 8th
  base of each 512 bp window hidden (random offset per window), so the ±3 bp context of a k-mer model
  is never hidden;
* random 15 % (the BERT-style protocol of published DNA language models): 15 % of the A/C/G/T of each
  window hidden at random, neighbours included.

Rows: base composition; the bidirectional k-mer count model (k bases each side, add-0.5 smoothing)
fitted here on the training chromosomes, k = 1..5, the best k chosen on validation (under random
masking it backs off to the largest k whose context is unmasked); the trained layer with its
prediction head, on the forward strand and as the mean of the forward and reverse-complement passes
(how level 1 embeds). Published numbers on the same held-out chromosomes (Chao et al. 2025, "Shorkie",
reproduction table; BERT-style masking) are quoted, not re-run: a convolutional masked model trained on
R64 alone, 3.746; the same trained on 165 Saccharomycetales genomes, 3.585.

Perplexity = exp(mean cross-entropy over the hidden A/C/G/T, nats); accuracy = share of hidden bases
predicted right. Also: training throughput (tokens/s, forward + backward) of the layer on this machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

PUBLISHED = {"Shorkie, R64 only (Chao et al. 2025)": 3.746, "Shorkie, 165 Saccharomycetales genomes": 3.585}


def kmer_tables(arrays, ks, acgt_index):
    """Counts [4^(2k), 4] of (context, base) over the training contigs, for each k."""
    tables = {}
    for k in ks:
        table = np.zeros(4 ** (2 * k) * 4, dtype=np.int64)
        for a in arrays.values():
            idx = acgt_index[a]
            code, ok = _context_codes(idx, k)
            ok &= idx >= 0
            table += np.bincount(code[ok] * 4 + idx[ok], minlength=table.size)
        tables[k] = table.reshape(-1, 4).astype(np.float64)
    return tables


def _context_codes(idx, k):
    n = len(idx)
    code = np.zeros(n, np.int64)
    ok = np.ones(n, bool)
    for d in [*range(-k, 0), *range(1, k + 1)]:
        sh = np.full(n, -1, np.int64)
        if d < 0:
            sh[-d:] = idx[:d]
        else:
            sh[:-d] = idx[d:]
        ok &= sh >= 0
        code = code * 4 + np.maximum(sh, 0)
    return code, ok


def kmer_logp(tables, composition, inputs, targets, acgt_index, k_max, alpha=0.5):
    """log p of the hidden bases under the k-mer model with back-off to the largest clean-context k."""
    out = []
    for w, t in zip(inputs, targets):
        sel = np.flatnonzero(t >= 0)
        if not len(sel):
            continue
        idx = acgt_index[w]  # hidden bases are N in the input: -1
        logp = np.tile(np.log(composition), (len(sel), 1))
        done = np.zeros(len(sel), bool)
        for k in range(k_max, 0, -1):
            code, ok = _context_codes(idx, k)
            use = ok[sel] & ~done
            if use.any():
                counts = tables[k][code[sel][use]]
                logp[use] = np.log((counts + alpha) / (counts.sum(1, keepdims=True) + 4 * alpha))
                done |= use
        out.append((logp, t[sel]))
    logp = np.concatenate([x for x, _ in out])
    tgt = np.concatenate([y for _, y in out])
    return logp, tgt


def score(logp, tgt):
    ce = -logp[np.arange(len(tgt)), tgt]
    return {"perplexity": round(float(math.exp(ce.mean())), 4), "accuracy": round(float((logp.argmax(1) == tgt).mean()), 4),
            "bases": int(len(tgt))}


def random_mask_windows(arrays, window, fraction, seed, acgt_index, alphabet):
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for a in arrays.values():
        for s in range(0, len(a), window):
            w = np.zeros(window, np.uint8)
            piece = a[s:s + window]
            w[:len(piece)] = piece
            idx = acgt_index[w]
            hide = (idx >= 0) & (rng.random(window) < fraction)
            if not hide.any():
                continue
            targets.append(np.where(hide, idx, -100))
            w[hide] = alphabet.N
            inputs.append(w)
    return np.stack(inputs), np.stack(targets)


def model_logp(module, head, inputs, targets, both_strands, batch=32):
    import torch
    import torch.nn.functional as F

    from genoattn import alphabet

    comp = torch.as_tensor(alphabet.COMPLEMENT)
    swap = torch.tensor([3, 2, 1, 0])  # A<->T, C<->G in the head's A, C, G, T order
    out_lp, out_t = [], []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            x = torch.from_numpy(inputs[i:i + batch])
            lp = F.log_softmax(head(module(x)).float(), -1)
            if both_strands:
                rc = comp[x.long().flip(1)].to(torch.uint8)
                lp_rc = F.log_softmax(head(module(rc)).float(), -1).flip(1)[..., swap]
                lp = torch.logsumexp(torch.stack([lp, lp_rc]), 0) - math.log(2)  # mean of the probabilities
            t = targets[i:i + batch]
            sel = t >= 0
            out_lp.append(lp.numpy()[sel])
            out_t.append(t[sel])
    return np.concatenate(out_lp), np.concatenate(out_t)


def throughput(module, head, arrays, window, threads, steps=6, batch=32):
    import torch
    import torch.nn.functional as F

    from genoattn.training.masked_bases import GenomeWindows, mask_batch

    torch.set_num_threads(threads)
    data = GenomeWindows(arrays, window)
    rng = np.random.default_rng(0)
    params = list(module.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-6)
    times = []
    for step in range(steps + 1):
        x, t = mask_batch(data.draw(batch, rng, 0.5), rng, 0.15)
        t0 = time.perf_counter()
        logits = head(module(torch.from_numpy(x)))
        loss = F.cross_entropy(logits.reshape(-1, 4), torch.from_numpy(t).reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:
            times.append(time.perf_counter() - t0)
    return {"tokens_per_s": round(batch * window / float(np.median(times)), 1), "batch": batch, "window": window,
            "threads": threads, "steps_timed": steps}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-dir", required=True, help="model.safetensors + head.safetensors + model.json")
    p.add_argument("--tokens", required=True, help="tokens.zarr of the reference the model was trained on")
    p.add_argument("--json", help="write the results here too (they are always written to TRAIN_DIR/heldout.json)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-k", type=int, default=5)
    a = p.parse_args(argv)

    import torch
    from safetensors.torch import load_file

    from genoattn import alphabet
    from genoattn.config import defaults
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module
    from genoattn.training.masked_bases import ACGT_INDEX, heldout_windows, load_contigs

    torch.set_num_threads(a.threads)
    d = Path(a.train_dir)
    info = json.loads((d / "model.json").read_text())
    split = info["split"]
    cfg = {**defaults("levels.level1"), **info["identity"]["config"]["levels"]["level1"]}
    module, ident = build_module(lambda: level1_module(cfg), "level1", str(d / "model.safetensors"))
    head = torch.nn.Sequential(torch.nn.LayerNorm(module.dim), torch.nn.Linear(module.dim, 4))
    head.load_state_dict(load_file(d / "head.safetensors"))
    module.eval()
    head.eval()
    window = module.window
    arrays = {name: load_contigs(a.tokens, split[name]) for name in ("train", "validation", "test")}

    t0 = time.time()
    counts = np.zeros(4)
    for arr in arrays["train"].values():
        idx = ACGT_INDEX[arr]
        counts += np.bincount(idx[idx >= 0], minlength=4)
    composition = counts / counts.sum()
    ks = list(range(1, a.max_k + 1))
    tables = kmer_tables(arrays["train"], ks, ACGT_INDEX)
    protocols = {"grid": {name: heldout_windows(arrays[name], window, seed={"validation": 1, "test": 2}[name])
                          for name in ("validation", "test")},
                 "random15": {name: random_mask_windows(arrays[name], window, 0.15, {"validation": 11, "test": 12}[name],
                                                        ACGT_INDEX, alphabet) for name in ("validation", "test")}}
    result = {"train_dir": str(d), "tokens": a.tokens, "split": split, "model": {
        "steps": info["steps"], "seconds": info["seconds"], "layers": cfg["layers"], "dim": cfg["dim"],
        "heads": cfg["heads"], "conv_kernel": cfg["conv_kernel"], "window": window,
        "parameters": ident["parameters"], "checkpoint_sha256": ident["checkpoint_sha256"]},
        "published": PUBLISHED, "protocols": {}}
    for proto, sets in protocols.items():
        rows = {}
        for name in ("validation", "test"):
            inputs, targets = sets[name]
            tgt = targets[targets >= 0]
            rows.setdefault("base composition", {})[name] = score(np.tile(np.log(composition), (len(tgt), 1)), tgt)
            for k in ks:
                lp, t = kmer_logp(tables, composition, inputs, targets, ACGT_INDEX, k)
                rows.setdefault(f"k-mer, k={k} each side", {})[name] = score(lp, t)
            for both in (False, True):
                lp, t = model_logp(module, head, inputs, targets, both)
                label = "genoattn level 1, trained" + (" (both strands)" if both else " (forward strand)")
                rows.setdefault(label, {})[name] = score(lp, t)
        best = min(ks, key=lambda k: rows[f"k-mer, k={k} each side"]["validation"]["perplexity"])
        result["protocols"][proto] = {"rows": rows, "best_k_on_validation": best}
        print(f"\n{proto}: test perplexity / accuracy ({rows['base composition']['test']['bases']:,} bases)")
        for label, r in rows.items():
            mark = "  <- best k on validation" if label == f"k-mer, k={best} each side" else ""
            print(f"  {label:45s} {r['test']['perplexity']:.4f}  {r['test']['accuracy']:.4f}{mark}")
    for label, value in PUBLISHED.items():
        print(f"  {label:45s} {value:.3f}  (published, BERT-style masking)")
    result["throughput_cpu"] = throughput(module.train(), head.train(), arrays["train"], window, a.threads)
    result["seconds"] = round(time.time() - t0, 1)
    print(f"\ntraining throughput (forward + backward, {a.threads} threads): "
          f"{result['throughput_cpu']['tokens_per_s']:.0f} tokens/s")
    text = json.dumps(result, indent=1) + "\n"
    (d / "heldout.json").write_text(text)  # beside the checkpoint: the report's held-out table reads it
    if a.json:
        Path(a.json).write_text(text)
    return result


if __name__ == "__main__":
    main()
