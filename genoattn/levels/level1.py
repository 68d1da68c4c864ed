"""Level 1 runner: tokens.zarr (+ annotation) -> level1/{contig}.zarr, streaming in window batches.

See :mod:`genoattn.levels.nucleotide` for the model and the output contract.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from genoattn import alphabet
from genoattn.io.store import RowWriter, atomic_store, mark_coordinates, open_group, read_attrs
from genoattn.levels.nucleotide import (exon_positions, level1_module, owner_window, strand_symmetric,
                                        window_starts)
from genoattn.kernels.dispatch import describe
from genoattn.model import build_module, pick_device
from genoattn.runtime import Progress

log = logging.getLogger(__name__)


def load_model(cfg: dict, device: torch.device):
    module, identity = build_module(
        lambda: level1_module(cfg), "level1",
        cfg["checkpoint"], cfg["seed"])
    return module.to(device), identity


def window_batch(tokens: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """[B, window] token matrix of windows at ``starts`` from a contig array (PAD past the end)."""
    out = np.zeros((len(starts), window), dtype=np.uint8)
    for i, s in enumerate(starts):
        piece = tokens[s:s + window]
        out[i, :len(piece)] = piece
    return out


@torch.no_grad()
def embed_windows(module, batch: np.ndarray, reverse_complement: bool, device, backend=None) -> torch.Tensor:
    tok = torch.from_numpy(batch).to(device)
    if reverse_complement:
        return strand_symmetric(module, tok, backend=backend)
    return module(tok, backend=backend)


def run(tokens_path: str, contig: str, out: str, cfg: dict, annotation_path: str | None = None,
        device: str = "auto", inputs: dict | None = None) -> None:
    window, stride, batch_size = cfg["window"], cfg["stride"], cfg["batch_size"]
    dev = pick_device(device)
    group = open_group(tokens_path, contig)
    length = int(group.attrs["length"])
    tokens_arr = group["tokens"]
    annotation = None
    if annotation_path:
        import pandas as pd
        annotation = pd.read_parquet(annotation_path, columns=["feature", "contig", "start", "end"])
    exon_pos = exon_positions(annotation, contig, length)
    starts = window_starts(length, stride)
    n_win = len(starts)
    owners = owner_window(exon_pos, length, window, stride)
    module, identity = load_model(cfg, dev)
    log.info("%s: %d bp, %d windows (window %d, stride %d), %d exon bases, device %s, weights %s",
             contig, length, n_win, window, stride, len(exon_pos), dev, identity["weights"])

    attrs = {"level": "level1", "contig": contig, "contig_length": length, "window": window, "stride": stride,
             "dim": cfg["dim"], "heads": cfg["heads"], "reverse_complement": cfg["reverse_complement"],
             "model": identity, "kernels": describe(dev), "config": cfg,
             "inputs": inputs if inputs is not None else read_attrs(tokens_path).get("inputs", {}),
             "annotation": annotation_path}
    dim = cfg["dim"]
    wchunk = max(batch_size, 4096 // batch_size * batch_size)
    with atomic_store(out, attrs=attrs) as store:
        store.write("window_start", starts, ("window",))
        store.write("window_end", np.minimum(starts + window, length), ("window",))
        emb_w = RowWriter(store.create("window_embedding", (n_win, dim), "float32", ("window", "feature"),
                                       chunks=(wchunk, dim)))
        nb_w = RowWriter(store.create("window_n_bases", (n_win,), "int32", ("window",), chunks=(wchunk,)))
        sk_w = RowWriter(store.create("window_skipped", (n_win,), "bool", ("window",), chunks=(wchunk,),
                                      fill_value=False))
        n_ex = len(exon_pos)
        store.write("exon_base_position", exon_pos, ("exon_base",))
        ex_w = RowWriter(store.create("exon_base_embedding", (n_ex, dim), cfg["exon_base_dtype"],
                                      ("exon_base", "feature"), chunks=(65536, dim)))
        tok_w = RowWriter(store.create("exon_base_token", (n_ex,), "uint8", ("exon_base",), chunks=(1 << 20,)))
        mark_coordinates(store, "window_start", "window_end", "exon_base_position")

        progress = Progress(n_win, f"level1 {contig} windows")
        ex_lo = 0
        for b0 in range(0, n_win, batch_size):
            b1 = min(n_win, b0 + batch_size)
            lo, hi = int(starts[b0]), int(min(length, starts[b1 - 1] + window))
            span = np.asarray(tokens_arr[lo:hi])
            batch = window_batch(span, starts[b0:b1] - lo, window)
            real = (batch != alphabet.PAD) & (batch != alphabet.N)
            n_bases = real.sum(1).astype(np.int32)
            skipped = n_bases == 0
            emb = np.zeros((b1 - b0, dim), dtype=np.float32)
            out_t = None
            keep = np.flatnonzero(~skipped)
            if len(keep):
                out_t = embed_windows(module, batch[keep], cfg["reverse_complement"], dev)
                w = torch.from_numpy(real[keep]).to(out_t.dtype).to(out_t.device)[..., None]
                emb[keep] = ((out_t * w).sum(1) / w.sum(1)).float().cpu().numpy()
            emb_w.append(emb)
            nb_w.append(n_bases)
            sk_w.append(skipped)
            # exon bases owned by windows of this batch form one contiguous run of exon_pos; only their rows
            # of the per-base output leave the device (exons are ~2 % of a human genome, 70 % of yeast's)
            ex_hi = int(np.searchsorted(owners, b1, side="left"))
            if ex_hi > ex_lo:
                pos = exon_pos[ex_lo:ex_hi]
                own = owners[ex_lo:ex_hi] - b0
                offs = pos - starts[b0:b1][own]
                rows = np.zeros((len(pos), dim), dtype=np.float32)
                if out_t is not None:
                    slot = np.full(b1 - b0, -1, dtype=np.int64)
                    slot[keep] = np.arange(len(keep))
                    hit = slot[own] >= 0
                    if hit.any():
                        at = (torch.from_numpy(slot[own][hit]).to(out_t.device),
                              torch.from_numpy(offs[hit]).to(out_t.device))
                        rows[hit] = out_t[at].float().cpu().numpy()
                ex_w.append(rows.astype(cfg["exon_base_dtype"]))
                tok_w.append(span[pos - lo])
                ex_lo = ex_hi
            progress.update(b1 - b0)
        for w_ in (emb_w, nb_w, sk_w, ex_w, tok_w):
            w_.close()
        store.group.attrs["n_windows"] = n_win
        store.group.attrs["n_skipped"] = int(np.asarray(store.group["window_skipped"][:]).sum())
        store.group.attrs["n_exon_bases"] = n_ex


def describe_window(sequence: str, window: int, heads: int, dim: int, block_q: int = 128) -> dict:
    """Numbers printed by `genoattn level1 --sequence ...` for one window (the spec's example)."""
    L = window                                    # padded positions are computed too (masked as keys)
    flops = 4 * L * L * dim                       # QK^T and PV, all heads
    full_scores = heads * L * L * 4                # one float32 score matrix
    tiled_scores = heads * min(block_q, L) * L * 4  # one query block of scores at a time
    return {"length": min(len(sequence), window), "attention_flops": flops, "full_score_bytes": full_scores,
            "tiled_score_bytes": tiled_scores, "blocks": math.ceil(L / block_q)}
