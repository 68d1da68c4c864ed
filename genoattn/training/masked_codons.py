"""Level 2, masked-codon prediction: the codon layer learns what a codon is from the codons around it.

Input contract
--------------
* ``tokens.zarr`` (level 0) and ``annotation.parquet`` of the reference; transcripts chosen as level 2
  chooses them (``levels.annotation``); coding exons of the training contigs train, those of the held-out
  contigs (:mod:`genoattn.training.split`) are only scored.
* The level-1 module the config uses (``levels.level1`` and its checkpoint), frozen: level 2 reads the
  per-base embeddings level 1 gives, so training computes them the way the level-1 store does (the same
  512 bp window tiling, both strands averaged with ``reverse_complement``).

Objective
---------
An example is one coding exon's codon tokens in all three frames (as level 2 sees them; an exon longer
than ``max_codons`` annotated-frame codons is cropped to a random run of that many). ``mask_fraction`` of
its annotated-frame codons are hidden (at least one), and nothing of a hidden codon's three bases reaches
the input:

* its bases are N in the tokens level 1 runs on, so no level-1 embedding of any base (level 1 attends over
  its whole window) can carry them;
* the letters of every token that covers a hidden base (the hidden codon and the frame-1/2 codons that
  overlap it) are N: composition 1/4 each.

A head (LayerNorm + Linear, dim -> 64) predicts each hidden codon in the annotated frame (64 classes:
16 a + 4 b + c over A, C, G, T in transcript orientation; codons with an ambiguity code are not
targets). Perplexity = exp(mean cross-entropy over the hidden codons); ln 64 = 4.16 is guessing.

Held-out metric: every exon of the validation / test contigs, with a fixed seeded set of hidden codons;
benchmarks/level2_training.py scores the codon-usage and neighbouring-codon count models on exactly
those codons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genoattn import alphabet
from genoattn import transcripts as tx
from genoattn.training.masked_bases import ACGT_INDEX, load_contigs
from genoattn.training.loop import prediction_head

QUICK_EXONS = 200


@dataclass
class Exon:
    contig: str
    rows: np.ndarray          # indices into the codon table, transcript order
    frame: np.ndarray         # [C] int8
    offset: np.ndarray        # [C] int64, CDS offset of the first base
    bases: np.ndarray         # [C, 3] genomic positions, transcript order
    minus: bool


def codon_class(tokens: np.ndarray, minus: bool) -> np.ndarray:
    """64-class index of codons [C, 3] (forward-strand tokens, transcript order); -100 with a non-ACGT base."""
    t = alphabet.COMPLEMENT[tokens] if minus else tokens
    idx = ACGT_INDEX[t]
    ok = (idx >= 0).all(axis=1)
    cls = idx[:, 0] * 16 + idx[:, 1] * 4 + idx[:, 2]
    return np.where(ok, cls, -100)


def coding_exons(annotation, contigs: list[str], ann_cfg: dict) -> list[Exon]:
    """The coding exons of ``contigs`` as level 2 builds them (transcripts per ``levels.annotation``)."""
    model = tx.build_transcripts(annotation, on_error="skip", select=ann_cfg["transcripts"],
                                 canonical_tags=tuple(ann_cfg["canonical_tags"]), contigs=contigs,
                                 source="annotation")
    exons = tx.exon_table(model.transcripts)
    codons = tx.codon_table(model.transcripts, exons)
    out = []
    for i in range(len(exons)):
        a, b = int(codons.exon_offset[i]), int(codons.exon_offset[i + 1])
        if b - a < 3:
            continue
        rows = np.arange(a, b)
        t = model.transcripts[int(exons.transcript_index[i])]
        out.append(Exon(t.contig, rows, codons.frame[a:b].copy(), codons.cds_offset[a:b].copy(),
                        codons.base_position[a:b].copy(), t.strand == "-"))
    return out


class Level1Embedder:
    """Per-base level-1 embeddings computed on the fly, with some bases hidden (N), on the window tiling
    of the level-1 store (windows at multiples of ``stride``; a base from the window whose centre is
    nearest, as :func:`genoattn.levels.nucleotide.owner_window`)."""

    def __init__(self, module, cfg: dict, arrays: dict[str, np.ndarray], device, backend=None):
        self.module, self.cfg, self.arrays, self.device, self.backend = module.eval(), cfg, arrays, device, backend
        for p in module.parameters():
            p.requires_grad_(False)

    def request(self, contig: str, positions: np.ndarray, hidden: np.ndarray):
        """The windows (hidden positions as N) and the (window, offset) of each of ``positions``."""
        from genoattn.levels.level1 import window_batch
        from genoattn.levels.nucleotide import owner_window

        seq = self.arrays[contig]
        window, stride = self.cfg["window"], self.cfg["stride"]
        owners = owner_window(positions, len(seq), window, stride)
        uniq, inv = np.unique(owners, return_inverse=True)
        starts = uniq * stride
        lo, hi = int(starts.min()), int(min(len(seq), starts.max() + window))
        span = seq[lo:hi].copy()
        h = hidden[(hidden >= lo) & (hidden < hi)] - lo
        span[h] = alphabet.N
        return window_batch(span, starts - lo, window), inv, positions - starts[inv]

    @torch.no_grad()
    def many(self, requests: list, max_windows: int = 64) -> list[np.ndarray]:
        """Embeddings [len(positions), dim] for each request, the windows of all of them run together."""
        from genoattn.levels.level1 import embed_windows

        windows = np.concatenate([r[0] for r in requests]) if requests else np.zeros((0, self.cfg["window"]), np.uint8)
        outs = [embed_windows(self.module, windows[i:i + max_windows], self.cfg["reverse_complement"], self.device,
                              self.backend).float().cpu() for i in range(0, len(windows), max_windows)]
        emb = torch.cat(outs) if outs else torch.zeros(0)
        result, at = [], 0
        for win, inv, off in requests:
            result.append(emb[at + torch.as_tensor(inv), torch.as_tensor(off)].numpy())
            at += len(win)
        return result

    def __call__(self, contig: str, positions: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """Embeddings [len(positions), dim] of genomic ``positions`` with ``hidden`` positions set to N."""
        return self.many([self.request(contig, positions, hidden)])[0]


class MaskedCodons:
    """The level-2 objective (see the module docstring)."""

    level = "level2"
    name = "masked-codon prediction"

    def __init__(self, module, level1_module, level1_cfg: dict, tokens_path: str, annotation, split: dict,
                 ann_cfg: dict, cfg: dict, backend=None, device: torch.device | None = None):
        from genoattn.io.annotation import read_annotation

        self.module = module
        self.head = prediction_head(module.dim, 64, cfg["seed"])  # seeded by training.level2.seed
        self.cfg, self.backend, self.split = cfg, backend, split
        self.device = device or torch.device("cpu")
        contigs = [c for part in ("train", "validation", "test") for c in split[part]]
        self.arrays = load_contigs(tokens_path, contigs)
        self.level1 = Level1Embedder(level1_module.to(self.device), level1_cfg, self.arrays, self.device, backend)
        table = annotation if hasattr(annotation, "columns") else read_annotation(annotation)
        self.exons = {part: coding_exons(table, split[part], ann_cfg) if split[part] else []
                      for part in ("train", "validation", "test")}
        if not self.exons["train"]:
            raise ValueError("no coding exon on the training contigs: level 2 cannot be trained on this "
                             "reference (check the annotation and references.<name>.held_out)")
        lengths = np.array([len(e.rows) for e in self.exons["train"]], dtype=np.float64)
        self.weights = lengths / lengths.sum()  # exons drawn by length: every codon equally likely
        self._heldout: dict[str, list] = {}

    # -- examples ------------------------------------------------------------------------------------------------
    def example(self, ex: Exon, rng: np.random.Generator, crop: bool) -> dict:
        return self.examples([ex], rng, crop)[0]

    def examples(self, exons: list[Exon], rng: np.random.Generator, crop: bool) -> list[dict]:
        """One example per exon (see the module docstring); level 1 runs once over all their windows."""
        parts, requests = [], []
        for ex in exons:
            part = self._mask(ex, rng, crop)
            parts.append(part)
            if part:
                requests.append(self.level1.request(ex.contig, part.pop("flat"), part.pop("hidden_pos")))
        embs = iter(self.level1.many(requests))
        for part in parts:
            if part:
                part["emb"] = next(embs).reshape(len(part["frame"]), 3, -1).astype(np.float32)
        return parts

    def _mask(self, ex: Exon, rng: np.random.Generator, crop: bool) -> dict:
        n = len(ex.rows)
        a, b = 0, n
        frame0 = np.flatnonzero(ex.frame == 0)
        max_rows = 3 * self.cfg["max_codons"]
        if crop and n > max_rows:
            a = int(rng.integers(0, n - max_rows + 1))
            b = a + max_rows
            frame0 = frame0[(frame0 >= a) & (frame0 < b)]
        seq = self.arrays[ex.contig]
        bases = ex.bases[a:b]
        true_cls = codon_class(seq[ex.bases[frame0]], ex.minus)
        eligible = frame0[true_cls >= 0]
        if not len(eligible):
            return {}
        hide = eligible[rng.random(len(eligible)) < self.cfg["mask_fraction"]]
        if not len(hide):
            hide = eligible[[int(rng.integers(0, len(eligible)))]]
        hidden_pos = np.unique(ex.bases[hide].reshape(-1))
        flat = bases.reshape(-1)
        tok = seq[flat].copy()
        tok[np.isin(flat, hidden_pos)] = alphabet.N
        t = alphabet.COMPLEMENT[tok] if ex.minus else tok
        comp = alphabet.COMPOSITION[t].reshape(len(bases), 3, 4)
        target = np.full(b - a, -100, dtype=np.int64)
        target[hide - a] = codon_class(seq[ex.bases[hide]], ex.minus)
        return {"flat": flat, "hidden_pos": hidden_pos, "comp": comp.astype(np.float32), "frame": ex.frame[a:b],
                "offset": ex.offset[a:b], "target": target}

    @staticmethod
    def pack(examples: list[dict]) -> dict:
        examples = [e for e in examples if e]
        lengths = [len(e["target"]) for e in examples]
        cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return {k: torch.from_numpy(np.concatenate([e[k] for e in examples])) for k in
                ("emb", "comp", "frame", "offset", "target")} | {"cu": torch.from_numpy(cu)}

    def batch(self, rng, size):
        picks = rng.choice(len(self.exons["train"]), size=size, p=self.weights)
        return self.pack(self.examples([self.exons["train"][i] for i in picks], rng, crop=True))

    def forward(self, module, head, batch, checkpoint_blocks=False):
        d = self.device
        out = module(batch["emb"].to(d), batch["comp"].to(d), batch["frame"].to(d), batch["offset"].to(d),
                     batch["cu"].to(d), backend=self.backend, checkpoint_blocks=checkpoint_blocks)
        return head(out).float()

    def loss(self, module, head, batch, checkpoint_blocks=False):
        logits = self.forward(module, head, batch, checkpoint_blocks)
        target = batch["target"].to(self.device)
        loss = F.cross_entropy(logits, target, ignore_index=-100)
        sel = target >= 0
        acc = (logits.argmax(-1)[sel] == target[sel]).float().mean().item() if sel.any() else 0.0
        return loss, {"accuracy": acc, "tokens": int(len(target))}

    # -- held-out ------------------------------------------------------------------------------------------------
    def heldout(self, split: str) -> list[dict]:
        """Fixed held-out examples of ``split`` (whole exons, seeded hidden codons), computed once."""
        if split not in self._heldout:
            rng = np.random.default_rng({"validation": 101, "test": 102}[split])
            exons = self.exons[split]
            self._heldout[split] = [e for i in range(0, len(exons), 16)
                                    for e in self.examples(exons[i:i + 16], rng, crop=False)]
        return self._heldout[split]

    @torch.no_grad()
    def evaluate(self, module, head, split, quick=False):
        if not self.exons.get(split):
            return {}
        was = module.training
        module.eval()
        head.eval()
        examples = [e for e in self.heldout(split) if e]
        if quick and len(examples) > QUICK_EXONS:
            examples = [examples[int(i)] for i in np.linspace(0, len(examples) - 1, QUICK_EXONS)]
        total, hits, n = 0.0, 0, 0
        for i in range(0, len(examples), 32):
            b = self.pack(examples[i:i + 32])
            logp = F.log_softmax(self.forward(module, head, b), -1)
            t = b["target"].to(self.device)
            sel = t >= 0
            total += float(-logp[sel].gather(1, t[sel][:, None]).sum())
            hits += int((logp[sel].argmax(-1) == t[sel]).sum())
            n += int(sel.sum())
        module.train(was)
        head.train(was)
        return {"perplexity": round(math.exp(total / max(n, 1)), 4), "accuracy": round(hits / max(n, 1), 5),
                "cross_entropy": round(total / max(n, 1), 5), "codons": n, "exons": len(examples),
                "quick": bool(quick)}

    def describe(self):
        return {"split": self.split, "heldout_protocol": f"{self.cfg['mask_fraction']:.0%} of the annotated-frame "
                "codons of every held-out coding exon hidden (seeded)",
                "exons": {k: len(v) for k, v in self.exons.items()}}
