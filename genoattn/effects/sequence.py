"""Level 1 on variants: the masked-base log-likelihood ratio and the change of the window embedding.

Input contract
--------------
* A contig's reference tokens (uint8 codes of :mod:`genoattn.alphabet`, in memory).
* The level-1 module of ``levels.level1`` (its checkpoint, or seeded weights) and, for the LLR, the
  masked-base head ``head.safetensors`` that ``snakemake train`` writes beside a level-1 checkpoint.

Log-likelihood ratio (SNVs)
---------------------------
For a variant at 0-based ``p``, a window of ``window - 1`` bp centred on ``p`` (511 for 512: odd, so
that both strands see the same bases; shifted to stay inside the contig) with only base ``p`` replaced by N (the model's mask; the objective of
:mod:`genoattn.training.masked_bases`) gives log P(base) on the forward strand; the reverse-complement
of the same masked window gives it on the other strand (complement bases, mirrored position).
``llr = mean over the two strands of log P(alt) - log P(ref)`` (nats; negative: the model finds the
alternative base less likely in this context). The three SNVs of one position share both passes.

Window embedding change (SNVs and indels)
----------------------------------------
The variant's level-1 window is the store's (``window_starts`` at ``stride``, the window whose centre
is nearest, :func:`genoattn.levels.nucleotide.owner_window`), recomputed with the reference and with
the alternative sequence (an indel shifts the bases after it; the window keeps its start and length),
strand-symmetric when ``reverse_complement`` is set, exactly as level 1 writes its stores. The reference
pass of a window is computed once for all its variants. Returned per variant: the per-base outputs of
both passes (levels 2-3 read them) and the window embeddings (mean over real non-N bases).

Shapes::

    tokens       [L] uint8 (one contig)
    llr          [V] float32 (NaN for indels or without a head)
    window_ref   [V, dim], window_alt [V, dim]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genoattn import alphabet
from genoattn.levels.nucleotide import owner_window, strand_symmetric

BASE_INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}


def load_head(checkpoint: str | None, dim: int, device) -> tuple[torch.nn.Module | None, str]:
    """(masked-base head, note). None with the reason when the config's level 1 has no trained head."""
    from genoattn.training.loop import prediction_head

    if not checkpoint:
        return None, ("levels.level1.checkpoint is null (seeded, untrained weights): no masked-base head, so "
                      "no LLR. Fix: point it at a trained level-1 checkpoint (e.g. `checkpoint: train`)")
    head_file = Path(checkpoint).with_name("head.safetensors")
    if not head_file.exists():
        return None, (f"{head_file} does not exist (the checkpoint {checkpoint} was not written by `snakemake "
                      "train`): no masked-base head, so no LLR")
    from safetensors import safe_open

    with safe_open(str(head_file), framework="pt") as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    if meta.get("objective", "masked-base prediction") != "masked-base prediction" or \
            state.get("1.weight", torch.zeros(0)).shape[:1] != (4,):
        return None, f"{head_file} is not a masked-base head: no LLR"
    head = prediction_head(dim, 4, 0)
    head.load_state_dict(state)
    return head.to(device).eval(), str(head_file)


def centred_windows(tokens: np.ndarray, positions: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """([P, span] tokens with each position masked as N, offset of the position in its window). ``span`` is
    ``window`` made odd (511 for 512) so the position sits in the middle: the window of a base and the window
    of the same base read on the other strand hold the same bases (the LLR does not depend on the strand the
    reference is written on); windows are shifted to stay inside the contig."""
    L = len(tokens)
    window = window - (1 - window % 2)
    starts = np.clip(positions - window // 2, 0, max(L - window, 0))
    out = np.zeros((len(positions), window), dtype=np.uint8)
    for i, s in enumerate(starts):
        piece = tokens[s:s + window]
        out[i, :len(piece)] = piece
    offs = positions - starts
    out[np.arange(len(positions)), offs] = alphabet.N
    return out, offs


@torch.no_grad()
def masked_log_probs(module, head, tokens: np.ndarray, positions: np.ndarray, window: int, device,
                     batch_size: int = 64, backend=None) -> tuple[np.ndarray, np.ndarray]:
    """log P(A, C, G, T) [P, 4] at each position from the forward and the reverse-complement strand
    (both given as forward-strand bases)."""
    fwd = np.zeros((len(positions), 4), np.float32)
    rev = np.zeros((len(positions), 4), np.float32)
    comp_index = torch.tensor([3, 2, 1, 0], device=device)      # A<->T, C<->G in ACGT order
    for a in range(0, len(positions), batch_size):
        pos = positions[a:a + batch_size]
        win, offs = centred_windows(tokens, pos, window)
        x = torch.from_numpy(win).to(device)
        rows = torch.arange(len(pos), device=device)
        o = torch.from_numpy(offs).to(device)
        lp = F.log_softmax(head(module(x, backend=backend)).float(), -1)
        fwd[a:a + len(pos)] = lp[rows, o].cpu().numpy()
        rc = torch.as_tensor(alphabet.COMPLEMENT, device=device)[x.long().flip(1)]
        lp_rc = F.log_softmax(head(module(rc, backend=backend)).float(), -1)
        rev[a:a + len(pos)] = lp_rc[rows, win.shape[1] - 1 - o][:, comp_index].cpu().numpy()
    return fwd, rev


def snv_llr(module, head, tokens: np.ndarray, start: np.ndarray, ref: list[str], alt: list[str], window: int,
            device, batch_size: int = 64, backend=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(llr, llr_forward, llr_reverse) [V] of SNVs at 0-based ``start``; one pair of passes per position."""
    positions, inverse = np.unique(start, return_inverse=True)
    fwd, rev = masked_log_probs(module, head, tokens, positions, window, device, batch_size, backend)
    r = np.array([BASE_INDEX[b] for b in ref])
    a = np.array([BASE_INDEX[b] for b in alt])
    lf = fwd[inverse, a] - fwd[inverse, r]
    lr = rev[inverse, a] - rev[inverse, r]
    return (0.5 * (lf + lr)).astype(np.float32), lf.astype(np.float32), lr.astype(np.float32)


def alt_window(tokens: np.ndarray, window_start: int, window: int, start: int, ref: str, alt: str) -> np.ndarray:
    """The window at ``window_start`` of the alternative sequence (REF at 0-based ``start`` -> ALT)."""
    L = len(tokens)
    lo = window_start
    hi = min(L, window_start + window + max(0, len(ref) - len(alt)))
    seq = tokens[lo:hi]
    a = start - lo
    alt_codes = alphabet.encode(alt)[0]
    edited = np.concatenate([seq[:max(a, 0)], alt_codes, seq[max(a, 0) + len(ref):]])
    out = np.zeros(window, dtype=np.uint8)
    piece = edited[:min(window, L + len(alt) - len(ref) - lo)]
    out[:len(piece)] = piece
    return out


def window_embedding(per_base: torch.Tensor, win: np.ndarray) -> torch.Tensor:
    """Mean of per-base outputs over real non-N bases (as level 1 writes ``window_embedding``)."""
    real = torch.from_numpy((win != alphabet.PAD) & (win != alphabet.N)).to(per_base.device)
    w = real.to(per_base.dtype)[..., None]
    return (per_base * w).sum(-2) / w.sum(-2).clamp(min=1)


@torch.no_grad()
def window_passes(module, tokens: np.ndarray, variants, window: int, stride: int, reverse_complement: bool, device,
                  batch_size: int = 32, backend=None):
    """Per variant (rows of a DataFrame with ``start``, ``ref``, ``alt``): its window index and start, and the
    reference and alternative per-base outputs of that window, yielded in batches:
    ``(rows, window_index, window_start, ref_out [B, W, dim], alt_out [B, W, dim], ref_tokens, alt_tokens)``.
    The reference pass of each window runs once for all of its variants."""
    L = len(tokens)
    starts = variants["start"].to_numpy(np.int64)
    owners = owner_window(np.minimum(starts, L - 1), L, window, stride)
    order = np.argsort(owners, kind="stable")

    def run(batch):
        x = torch.from_numpy(batch).to(device)
        return strand_symmetric(module, x, backend) if reverse_complement else module(x, backend=backend)

    refs = list(variants["ref"])
    alts = list(variants["alt"])
    for a in range(0, len(order), batch_size):
        rows = order[a:a + batch_size]
        w_idx = owners[rows]
        uniq, inv = np.unique(w_idx, return_inverse=True)
        ref_tok = np.zeros((len(uniq), window), np.uint8)
        for i, w in enumerate(uniq):
            piece = tokens[w * stride: w * stride + window]
            ref_tok[i, :len(piece)] = piece
        ref_out = run(ref_tok)[inv]
        alt_tok = np.stack([alt_window(tokens, int(w_idx[j] * stride), window, int(starts[r]), refs[r], alts[r])
                            for j, r in enumerate(rows)])
        alt_out = run(alt_tok)
        yield rows, w_idx, w_idx * stride, ref_out, alt_out, ref_tok[inv], alt_tok
