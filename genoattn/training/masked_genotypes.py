"""Level 6, masked-genotype prediction: the cohort layer learns linkage disequilibrium by imputing calls.

Input contract
--------------
* ``genotypes.zarr`` of the training cohort (VCF Zarr names, :mod:`genoattn.io.vcf`), biallelic
  (``filters.biallelic: true``, the default): ``call_genotype`` [variants, samples, ploidy] int8.
* ``cohorts.<name>.held_out``: ``validation_samples`` individuals of that cohort (a seeded choice, listed
  in model.json) are never trained on; ``test_cohort``, another cohort of the config (other individuals,
  its own genotypes store), is only scored. Every metric is measured on individuals the model never saw.
* The level-6 options (``levels.level6``); local windows stop where the level's do (``windows``).

Objective
---------
An example is one training individual's calls over a run of ``max_variants`` consecutive variants (the
individuals of a step share the run). ``mask_fraction`` of its observed diploid calls (codes 0/1/2) are
hidden: their token gets the genotype code of a missing call (3), exactly what a truly missing call of a
cohort to impute looks like, so nothing of a hidden call reaches the input: the per-variant part of a
token (allele, position, site, context) is the same for every individual. A head (LayerNorm + Linear,
dim -> 3) on the variant token predicts the hidden call's number of ALT alleles (0/1/2); dosage =
P(1) + 2 P(2).

Held-out metric: a fixed seeded ``heldout_mask_fraction`` of the observed calls of the validation
individuals and of every test-cohort individual hidden, each individual run over its whole genome;
pooled dosage r^2, concordance of the hard call (the genotype nearest the dosage), cross-entropy, and the
allele-frequency baseline on the same calls (each site's mean observed dosage among the same individuals).
benchmarks/level6_imputation.py compares with Beagle on a masked VCF.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from genoattn.levels.cohort import (MISSING_CODE, CohortModel, Level5Context, genotype_codes, segment_ids,
                                    variant_inputs)
from genoattn.training.loop import prediction_head

QUICK_INDIVIDUALS = 8
_TENSOR_KEYS = ("allele_class", "fourier", "context", "has_context", "site")


def read_codes(g, samples: np.ndarray | None = None, step: int = 1000) -> np.ndarray:
    """Genotype codes [samples, variants] uint8 of a store (``samples``: indices; None = all), read in steps."""
    S = int(g["sample_id"].shape[0])
    idx = np.arange(S) if samples is None else np.asarray(samples)
    if g["variant_allele"].shape[1] > 2:
        raise ValueError("masked-genotype training and imputation need a biallelic cohort: set "
                         "cohorts.<name>.filters.biallelic: true (the default)")
    out = []
    for i in range(0, len(idx), step):
        part = idx[i:i + step]
        gt = np.asarray(g["call_genotype"].get_orthogonal_selection((slice(None), part, slice(None))))
        out.append(genotype_codes(gt).T)
    V = int(g["variant_position"].shape[0])
    return np.concatenate(out) if out else np.zeros((0, V), np.uint8)


def hide_calls(codes: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(input codes with the hidden calls set to missing, target [-100 or the hidden call's 0/1/2]).

    Only observed diploid calls (codes 0/1/2) are hidden; each row hides at least one when it has one."""
    observed = codes <= 2
    hide = observed & (rng.random(codes.shape) < fraction)
    for r in np.flatnonzero(~hide.any(axis=1) & observed.any(axis=1)):
        hide[r, rng.choice(np.flatnonzero(observed[r]))] = True
    codes = codes.astype(np.int64)
    inp = np.where(hide, MISSING_CODE, codes)
    target = np.where(hide, codes, -100)
    return inp, target


def genotype_probabilities(module: CohortModel, head, codes: torch.Tensor, base: torch.Tensor,
                           seg: torch.Tensor, query_block: int = 1024) -> torch.Tensor:
    """Logits [B, V, 3] of 0/1/2 ALT alleles at every variant of ``codes`` [B, V] (base: [V, dim] per-variant
    part of the tokens, seg: [V] segment ids)."""
    _, tok = module(codes, base, seg, query_block)
    return head(tok).float()


def dosage_metrics(prob: np.ndarray, truth: np.ndarray) -> dict:
    """prob [n, 3], truth [n] in 0/1/2 -> pooled dosage r^2, concordance of the hard call (the genotype nearest
    the dosage), accuracy of the most probable genotype, cross-entropy."""
    if not len(truth):
        return {"calls": 0}
    dosage = prob[:, 1] + 2 * prob[:, 2]
    hard = np.clip(np.rint(dosage), 0, 2)
    ce = float(-np.log(np.clip(prob[np.arange(len(truth)), truth], 1e-12, None)).mean())
    return {"dosage_r2": round(_r2(dosage, truth), 5), "concordance": round(float((hard == truth).mean()), 5),
            "accuracy": round(float((prob.argmax(axis=1) == truth).mean()), 5), "cross_entropy": round(ce, 5),
            "calls": int(len(truth))}


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


class _Store:
    """One cohort's per-variant inputs (CPU tensors), segments and genotype codes."""

    def __init__(self, genotypes: str, ld_blocks: str | None, opts: dict, level5: str | None,
                 samples: np.ndarray | None = None):
        from genoattn.io.store import open_group

        g = open_group(genotypes)
        self.path = genotypes
        self.inputs = variant_inputs(g, opts, Level5Context(level5) if level5 else None)
        self.inputs.pop("n_context")
        self.seg = torch.from_numpy(segment_ids(g, ld_blocks, opts["windows"]))
        ids = np.array([str(s) for s in g["sample_id"][:]], dtype=object)
        self.sample_id = ids if samples is None else ids[np.asarray(samples)]
        self.codes = read_codes(g, samples)
        self.n_variants = int(self.seg.shape[0])

    def crop(self, a: int, b: int, device) -> dict:
        return {k: (None if self.inputs[k] is None else self.inputs[k][a:b].to(device)) for k in _TENSOR_KEYS}


class MaskedGenotypes:
    """The level-6 objective (see the module docstring)."""

    level = "level6"
    name = "masked-genotype prediction"

    def __init__(self, module: CohortModel, genotypes: str, ld_blocks: str | None, held_out: dict, cfg: dict,
                 opts: dict, test: tuple[str, str | None] | None = None, level5: str | None = None,
                 device: torch.device | None = None):
        from genoattn.io.store import open_group

        self.module = module
        self.head = prediction_head(module.dim, 3, cfg["seed"])
        self.cfg, self.opts = cfg, opts
        self.device = device or torch.device("cpu")
        S = int(open_group(genotypes)["sample_id"].shape[0])
        n_val = int(held_out["validation_samples"])
        if n_val >= S:
            raise ValueError(f"held_out.validation_samples = {n_val} leaves no training individual in {genotypes} "
                             f"({S} samples). Fix: hold out fewer")
        order = np.random.default_rng(int(cfg["seed"])).permutation(S)
        self.validation_idx, self.train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        self.train = _Store(genotypes, ld_blocks, opts, level5, self.train_idx)
        self.validation = _Store(genotypes, ld_blocks, opts, level5, self.validation_idx) if n_val else None
        self.test = _Store(test[0], test[1], opts, level5) if test else None
        L = min(int(cfg["max_variants"]), self.train.n_variants)
        if L < 2:
            raise ValueError(f"{genotypes} has {self.train.n_variants} variant(s): nothing to learn LD from")
        self.crop_len = L
        self._heldout: dict[str, tuple] = {}

    # -- training ------------------------------------------------------------------------------------------
    def batch(self, rng: np.random.Generator, size: int) -> dict:
        n = len(self.train_idx)
        rows = rng.choice(n, size=size, replace=size > n)
        a = int(rng.integers(0, self.train.n_variants - self.crop_len + 1))
        b = a + self.crop_len
        inp, target = hide_calls(self.train.codes[rows, a:b], float(self.cfg["mask_fraction"]), rng)
        return {"codes": torch.from_numpy(inp), "target": torch.from_numpy(target), "start": a, "stop": b}

    def _logits(self, module, head, store: _Store, codes: torch.Tensor, a: int, b: int):
        d = self.device
        base = module.variant_tokens(**store.crop(a, b, d))
        return genotype_probabilities(module, head, codes.to(d), base, store.seg[a:b].to(d),
                                      int(self.opts["query_block"]))

    def loss(self, module, head, batch, checkpoint_blocks=False):
        target = batch["target"].to(self.device)
        logits = self._logits(module, head, self.train, batch["codes"], batch["start"], batch["stop"])
        loss = F.cross_entropy(logits.reshape(-1, 3), target.reshape(-1), ignore_index=-100)
        sel = target >= 0
        acc = (logits.argmax(-1)[sel] == target[sel]).float().mean().item() if sel.any() else 0.0
        return loss, {"accuracy": acc, "tokens": int(target.numel())}

    # -- held-out ------------------------------------------------------------------------------------------------
    def _store(self, split: str) -> _Store | None:
        return {"validation": self.validation, "test": self.test}[split]

    def heldout(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The fixed masked inputs and targets [individuals, variants] of ``split``."""
        if split not in self._heldout:
            rng = np.random.default_rng({"validation": 201, "test": 202}[split])
            self._heldout[split] = hide_calls(self._store(split).codes, float(self.cfg["heldout_mask_fraction"]), rng)
        return self._heldout[split]

    @torch.no_grad()
    def evaluate(self, module, head, split, quick=False):
        store = self._store(split)
        if store is None:
            return {}
        was = module.training
        module.eval()
        head.eval()
        inp, target = self.heldout(split)
        if quick:
            inp, target = inp[:QUICK_INDIVIDUALS], target[:QUICK_INDIVIDUALS]
        base = module.variant_tokens(**store.crop(0, store.n_variants, self.device))
        seg = store.seg.to(self.device)
        probs, truth = [], []
        bsz = int(self.opts["batch_size"])
        for i in range(0, len(inp), bsz):
            logits = genotype_probabilities(module, head, torch.from_numpy(inp[i:i + bsz]).to(self.device), base,
                                            seg, int(self.opts["query_block"]))
            t = target[i:i + bsz]
            sel = t >= 0
            probs.append(torch.softmax(logits, -1).cpu().numpy()[sel])
            truth.append(t[sel])
        module.train(was)
        head.train(was)
        prob, truth = np.concatenate(probs), np.concatenate(truth)
        out = dosage_metrics(prob, truth)
        out["perplexity"] = round(math.exp(out["cross_entropy"]), 5)
        out["baseline_allele_frequency_r2"] = round(_r2(_allele_frequency_dosage(inp, target), truth), 5)
        out.update(individuals=int(len(inp)), quick=bool(quick))
        return out

    def describe(self):
        return {"held_out": {"validation_samples": self.validation.sample_id.tolist() if self.validation else [],
                             "test_cohort": self.test.path if self.test else None},
                "heldout_protocol": f"{self.cfg['heldout_mask_fraction']:.0%} of the observed diploid calls of "
                                    "each held-out individual hidden (seeded); every individual scored over its "
                                    "whole genome",
                "training_individuals": int(len(self.train_idx)), "variants": self.train.n_variants,
                "max_variants": self.crop_len}


def _allele_frequency_dosage(inp: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each hidden call's site mean dosage over the observed (not hidden, not missing) calls of ``inp``,
    in the order of ``target >= 0`` (row-major)."""
    observed = inp <= 2
    dosage = np.where(observed, inp, 0).sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
    return np.broadcast_to(dosage, inp.shape)[target >= 0]
