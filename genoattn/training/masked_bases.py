"""Level 1, masked-base prediction: train the nucleotide layer on a genome's own sequence.

Input contract
--------------
* ``tokens.zarr`` (level 0): one group per contig, ``tokens`` uint8 codes of :mod:`genoattn.alphabet`.
  Every contig of the store is used (the reference's include/exclude made it); the token arrays are
  held in memory (one byte per base: 12 MB for yeast, 3.1 GB for human).
* The layer is built from ``levels.level1`` (window, dim, heads, seed): the checkpoint fits the
  config that will load it.

Objective
---------
Each step draws ``batch`` windows of ``window`` bp at uniform random positions of the genome
(windows with less than ``min_acgt`` A/C/G/T bases are drawn again), reverse-complements half of
them (level 1 averages both strands at inference), and hides ``mask_fraction`` of their A/C/G/T
positions behind ``N`` (composition 1/4 each: "unknown base"; IUPAC codes and N stay as they are and
are never targets; soft-masked bases are ordinary bases here, as the tokens are case-folded). A
linear head (dim -> 4) on the layer's output predicts the hidden bases; the loss is their
cross-entropy (nats; ln 4 = 1.386 is guessing).

A fixed, seeded validation set of windows is scored before and after training; both numbers go into
the checkpoint's metadata with ``trained=true``. Only the layer is saved (the head is a training
device): ``levels.level1.checkpoint: <file>`` then gives stores with ``model.trained: true``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genoattn import alphabet
from genoattn.io.store import open_group, read_attrs

log = logging.getLogger(__name__)

ACGT = np.array([alphabet.A, alphabet.C, alphabet.G, alphabet.T], dtype=np.uint8)


@dataclass
class TrainOptions:
    steps: int = 1000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 50
    mask_fraction: float = 0.15
    min_acgt: float = 0.5
    val_windows: int = 64
    seed: int = 0
    log_every: int = 50


class GenomeWindows:
    """Random windows of a tokens.zarr store (contigs held in memory, drawn by length)."""

    def __init__(self, tokens_path: str, window: int):
        attrs = read_attrs(tokens_path)
        self.contigs = list(attrs["contigs"])
        self.arrays = [np.asarray(open_group(tokens_path, c)["tokens"][:], dtype=np.uint8) for c in self.contigs]
        lengths = np.array([len(a) for a in self.arrays], dtype=np.float64)
        if not len(lengths) or lengths.max() < window:
            raise ValueError(f"{tokens_path}: no contig is as long as the level-1 window ({window} bp); "
                             "lower levels.level1.window or train on a larger genome")
        usable = np.where(lengths >= window, lengths - window + 1, 0)
        self.weights = usable / usable.sum()
        self.window = window
        self.is_acgt = np.zeros(alphabet.N_CODES, dtype=bool)
        self.is_acgt[ACGT] = True

    def draw(self, n: int, rng: np.random.Generator, min_acgt: float) -> np.ndarray:
        out = np.empty((n, self.window), dtype=np.uint8)
        filled = 0
        for _ in range(100):
            k = rng.choice(len(self.arrays), size=n - filled, p=self.weights)
            for ci in k:
                a = self.arrays[ci]
                s = int(rng.integers(0, len(a) - self.window + 1))
                w = a[s:s + self.window]
                if self.is_acgt[w].mean() >= min_acgt:
                    out[filled] = w
                    filled += 1
            if filled == n:
                return out
        raise ValueError(f"could not draw {n} windows with >= {min_acgt:.0%} A/C/G/T bases in 100 tries: the "
                         "genome is mostly N; lower min_acgt")


def mask_batch(windows: np.ndarray, rng: np.random.Generator, fraction: float):
    """(inputs, targets): ``fraction`` of the A/C/G/T positions set to N in the inputs; targets are the
    base index 0..3 there and -100 (ignored) elsewhere. Half of the windows reverse-complemented first."""
    w = windows.copy()
    flip = rng.random(len(w)) < 0.5
    w[flip] = alphabet.COMPLEMENT[w[flip, ::-1]]
    target = np.full(w.shape, -100, dtype=np.int64)
    acgt_index = np.full(alphabet.N_CODES, -1, dtype=np.int64)
    acgt_index[ACGT] = np.arange(4)
    idx = acgt_index[w]
    hide = (idx >= 0) & (rng.random(w.shape) < fraction)
    target[hide] = idx[hide]
    inputs = w.copy()
    inputs[hide] = alphabet.N
    return inputs, target


def _loss(module, head, inputs, target, backend):
    out = module(inputs, backend=backend)
    logits = head(out)
    loss = F.cross_entropy(logits.reshape(-1, 4), target.reshape(-1), ignore_index=-100)
    hit = (logits.argmax(-1) == target) & (target >= 0)
    return loss, hit.sum().item() / max(int((target >= 0).sum()), 1)


@torch.no_grad()
def evaluate(module, head, val, device, backend) -> tuple[float, float]:
    module.eval()
    losses, accs = [], []
    for inputs, target in val:
        loss, acc = _loss(module, head, torch.from_numpy(inputs).to(device), torch.from_numpy(target).to(device),
                          backend)
        losses.append(loss.item())
        accs.append(acc)
    return float(np.mean(losses)), float(np.mean(accs))


def train_level1(tokens_path: str, level1_cfg: dict, out: str, options: TrainOptions | None = None,
                 device: str = "auto", backend: str | None = None) -> dict:
    """Train the level-1 layer by masked-base prediction on ``tokens_path``; write the checkpoint ``out``
    (safetensors) and ``out``.log.tsv (one line per ``log_every`` steps). Returns the summary."""
    from genoattn.levels.nucleotide import NucleotideAttention
    from genoattn.model import build_module, pick_device, save_checkpoint
    from genoattn.runtime import Progress

    opt = options or TrainOptions()
    dev = pick_device(device)
    window = int(level1_cfg["window"])
    data = GenomeWindows(tokens_path, window)
    module, identity = build_module(lambda: NucleotideAttention(level1_cfg["dim"], level1_cfg["heads"], window),
                                    "level1", level1_cfg.get("checkpoint"), level1_cfg.get("seed", 0))
    module = module.to(dev)
    torch.manual_seed(opt.seed)
    head = torch.nn.Linear(level1_cfg["dim"], 4).to(dev)
    rng_val = np.random.default_rng(opt.seed + 1)
    val = [mask_batch(data.draw(min(opt.batch, opt.val_windows - i), rng_val, opt.min_acgt), rng_val,
                      opt.mask_fraction) for i in range(0, opt.val_windows, opt.batch)]
    val_before = evaluate(module, head, val, dev, backend)
    params = list(module.parameters()) + list(head.parameters())
    optim = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / max(opt.warmup, 1)))
    rng = np.random.default_rng(opt.seed)
    progress = Progress(opt.steps, f"level-1 training on {Path(tokens_path).name}")
    log_path = Path(f"{out}.log.tsv")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rows, recent = ["step\tloss\taccuracy\tlr"], []
    t0 = time.time()
    module.train()
    for step in range(1, opt.steps + 1):
        inputs, target = mask_batch(data.draw(opt.batch, rng, opt.min_acgt), rng, opt.mask_fraction)
        loss, acc = _loss(module, head, torch.from_numpy(inputs).to(dev), torch.from_numpy(target).to(dev), backend)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"level-1 training: loss is {loss.item()} at step {step}; lower --lr")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        recent.append((loss.item(), acc))
        if step % opt.log_every == 0 or step == opt.steps:
            ls, ac = np.mean(recent, axis=0)
            rows.append(f"{step}\t{ls:.5f}\t{ac:.4f}\t{sched.get_last_lr()[0]:.3g}")
            recent = []
        progress.update()
    val_after = evaluate(module, head, val, dev, backend)
    summary = {"steps": opt.steps, "seconds": round(time.time() - t0, 2),
               "val_loss_before": round(val_before[0], 5), "val_loss_after": round(val_after[0], 5),
               "val_accuracy_before": round(val_before[1], 4), "val_accuracy_after": round(val_after[1], 4),
               "tokens": str(tokens_path), "started_from": identity["weights"], "options": asdict(opt),
               "window": window, "dim": level1_cfg["dim"], "heads": level1_cfg["heads"]}
    log_path.write_text("\n".join(rows) + "\n")
    module.eval()
    save_checkpoint(module, out, "level1", {"trained": "true", "objective": "masked-base prediction",
                                            "training": json.dumps(summary)})
    log.info("level-1 training: validation loss %.4f -> %.4f nats (accuracy %.3f -> %.3f) in %d steps; wrote %s",
             val_before[0], val_after[0], val_before[1], val_after[1], opt.steps, out)
    return summary
