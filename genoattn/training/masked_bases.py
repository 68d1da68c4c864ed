"""Level 1, masked-base prediction: the nucleotide layer learns a genome's sequence context.

Input contract
--------------
* ``tokens.zarr`` (level 0): one group per contig, ``tokens`` uint8 codes of :mod:`genoattn.alphabet`;
  the contig arrays are held in memory (one byte per base: 12 MB for yeast, 3.1 GB for human).
* The split (:mod:`genoattn.training.split`): training draws windows from the training contigs only;
  validation and test contigs are only scored.
* The layer is built from ``levels.level1`` (window, dim, heads, layers, conv_kernel, seed), so the
  checkpoint fits the config that loads it.

Objective
---------
Each step draws ``batch`` windows of ``window`` bp at uniform random positions of the training contigs
(windows with less than ``min_acgt`` A/C/G/T are drawn again), reverse-complements half of them (level 1
averages both strands at inference), and hides ``mask_fraction`` of their A/C/G/T behind ``N`` (the
alphabet's "unknown base": the mean of the four base embeddings; IUPAC codes and N are never targets;
soft-masked bases are ordinary bases, the tokens are case-folded). A head (LayerNorm + Linear, dim -> 4)
predicts the hidden bases; the loss is their cross-entropy (nats; ln 4 = 1.386 is guessing).

Held-out metric (:func:`heldout_windows`)
-----------------------------------------
Every held-out contig is tiled into windows; in each window the bases at positions ``offset + 8k``
(``offset`` drawn once per window with a fixed seed) are hidden, so no two hidden bases are within 7 bp
and the ±3 bp context a k-mer model uses is never hidden. Perplexity = exp(mean cross-entropy over the
hidden A/C/G/T); accuracy = share predicted right. The baselines of benchmarks/level1_training.py are
scored on exactly these positions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from genoattn import alphabet
from genoattn.io.store import open_group, read_attrs
from genoattn.training.loop import prediction_head

ACGT = np.array([alphabet.A, alphabet.C, alphabet.G, alphabet.T], dtype=np.uint8)
ACGT_INDEX = np.full(alphabet.N_CODES, -1, dtype=np.int64)
ACGT_INDEX[ACGT] = np.arange(4)
#: spacing of the hidden bases of the held-out metric (no two within GRID - 1 bp)
GRID = 8
QUICK_WINDOWS = 256


def load_contigs(tokens_path: str, contigs: list[str]) -> dict[str, np.ndarray]:
    have = set(read_attrs(tokens_path)["contigs"])
    missing = [c for c in contigs if c not in have]
    if missing:
        raise ValueError(f"{tokens_path} has no contig {', '.join(missing)}: it was tokenized with other "
                         "include/exclude settings. Fix: rerun `snakemake tokenize`")
    return {c: np.asarray(open_group(tokens_path, c)["tokens"][:], dtype=np.uint8) for c in contigs}


class GenomeWindows:
    """Random windows of some contigs (held in memory), drawn uniformly by position."""

    def __init__(self, arrays: dict[str, np.ndarray], window: int, source: str = "tokens"):
        self.arrays = [a for a in arrays.values() if len(a) >= window]
        if not self.arrays:
            raise ValueError(f"{source}: no training contig is as long as the level-1 window ({window} bp); "
                             "lower levels.level1.window or train on a larger genome")
        usable = np.array([len(a) - window + 1 for a in self.arrays], dtype=np.float64)
        self.weights = usable / usable.sum()
        self.window = window
        self.is_acgt = np.zeros(alphabet.N_CODES, dtype=bool)
        self.is_acgt[ACGT] = True

    def draw(self, n: int, rng: np.random.Generator, min_acgt: float) -> np.ndarray:
        out = np.empty((n, self.window), dtype=np.uint8)
        filled = 0
        for _ in range(100):
            for ci in rng.choice(len(self.arrays), size=n - filled, p=self.weights):
                a = self.arrays[ci]
                s = int(rng.integers(0, len(a) - self.window + 1))
                w = a[s:s + self.window]
                if self.is_acgt[w].mean() >= min_acgt:
                    out[filled] = w
                    filled += 1
            if filled == n:
                return out
        raise ValueError(f"could not draw {n} windows with >= {min_acgt:.0%} A/C/G/T bases in 100 tries: the "
                         "genome is mostly N; lower training.level1.min_acgt")


def mask_batch(windows: np.ndarray, rng: np.random.Generator, fraction: float):
    """(inputs, targets): ``fraction`` of the A/C/G/T positions set to N in the inputs; targets are the
    base index 0..3 there and -100 (ignored) elsewhere. Half of the windows reverse-complemented first."""
    w = windows.copy()
    flip = rng.random(len(w)) < 0.5
    w[flip] = alphabet.COMPLEMENT[w[flip, ::-1]]
    idx = ACGT_INDEX[w]
    hide = (idx >= 0) & (rng.random(w.shape) < fraction)
    target = np.where(hide, idx, -100)
    inputs = w.copy()
    inputs[hide] = alphabet.N
    return inputs, target


def heldout_windows(arrays: dict[str, np.ndarray], window: int, seed: int = 0):
    """(inputs, targets) of the held-out metric over ``arrays`` (see the module docstring): windows tiled
    from each contig's start (the last one padded), bases at ``offset + 8k`` hidden."""
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for a in arrays.values():
        for s in range(0, len(a), window):
            w = np.zeros(window, dtype=np.uint8)
            piece = a[s:s + window]
            w[:len(piece)] = piece
            idx = ACGT_INDEX[w]
            hide = np.zeros(window, dtype=bool)
            hide[int(rng.integers(0, GRID))::GRID] = True
            hide &= idx >= 0
            if not hide.any():
                continue
            targets.append(np.where(hide, idx, -100))
            w[hide] = alphabet.N
            inputs.append(w)
    if not inputs:
        return np.zeros((0, window), np.uint8), np.zeros((0, window), np.int64)
    return np.stack(inputs), np.stack(targets)


class MaskedBases:
    """The level-1 objective (see the module docstring)."""

    level = "level1"
    name = "masked-base prediction"

    def __init__(self, module, tokens_path: str, split: dict[str, list[str]], cfg: dict, backend=None,
                 device: torch.device | None = None):
        self.module = module
        self.head = prediction_head(module.dim, 4, cfg["seed"])  # seeded by training.level1.seed
        self.cfg, self.backend, self.split = cfg, backend, split
        self.device = device or torch.device("cpu")
        self.window = module.window
        self.train_data = GenomeWindows(load_contigs(tokens_path, split["train"]), self.window, tokens_path)
        self.heldout = {}
        for name in ("validation", "test"):
            if split[name]:
                inputs, targets = heldout_windows(load_contigs(tokens_path, split[name]), self.window,
                                                  seed={"validation": 1, "test": 2}[name])
                self.heldout[name] = (inputs, targets)

    def batch(self, rng, size):
        inputs, target = mask_batch(self.train_data.draw(size, rng, self.cfg["min_acgt"]), rng,
                                    self.cfg["mask_fraction"])
        return {"inputs": torch.from_numpy(inputs), "target": torch.from_numpy(target)}

    def loss(self, module, head, batch, checkpoint_blocks=False):
        inputs, target = batch["inputs"].to(self.device), batch["target"].to(self.device)
        logits = head(module(inputs, backend=self.backend, checkpoint_blocks=checkpoint_blocks))
        loss = F.cross_entropy(logits.reshape(-1, 4).float(), target.reshape(-1), ignore_index=-100)
        hit = ((logits.argmax(-1) == target) & (target >= 0)).sum().item()
        n = int((target >= 0).sum())
        return loss, {"accuracy": hit / max(n, 1), "tokens": int(inputs.numel())}

    @torch.no_grad()
    def predict(self, module, head, inputs: np.ndarray, batch: int = 64) -> np.ndarray:
        """Log-probabilities [n, window, 4] (float32) of the model on ``inputs``."""
        out = np.zeros((*inputs.shape, 4), np.float32)
        for i in range(0, len(inputs), batch):
            x = torch.from_numpy(inputs[i:i + batch]).to(self.device)
            out[i:i + batch] = F.log_softmax(head(module(x, backend=self.backend)).float(), -1).cpu().numpy()
        return out

    @torch.no_grad()
    def evaluate(self, module, head, split, quick=False):
        if split not in self.heldout:
            return {}
        was = module.training
        module.eval()
        head.eval()
        inputs, targets = self.heldout[split]
        if quick and len(inputs) > QUICK_WINDOWS:
            pick = np.linspace(0, len(inputs) - 1, QUICK_WINDOWS).astype(np.int64)
            inputs, targets = inputs[pick], targets[pick]
        total, hits, n = 0.0, 0, 0
        for i in range(0, len(inputs), 64):
            logp = self.predict(module, head, inputs[i:i + 64])
            t = targets[i:i + 64]
            sel = t >= 0
            lp = logp[sel]
            total += float(-lp[np.arange(len(lp)), t[sel]].sum())
            hits += int((lp.argmax(-1) == t[sel]).sum())
            n += int(sel.sum())
        module.train(was)
        head.train(was)
        return {"perplexity": round(math.exp(total / max(n, 1)), 5), "accuracy": round(hits / max(n, 1), 5),
                "cross_entropy": round(total / max(n, 1), 5), "bases": n,
                "windows": int(len(inputs)), "quick": bool(quick)}

    def describe(self):
        return {"split": self.split, "heldout_protocol": f"every {GRID}th base hidden (random offset per window)",
                "window": self.window}
