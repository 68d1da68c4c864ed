"""Levels 4-5 benchmark on SYNTHETIC inputs (random features, synthetic graphs): speed and peak memory.

    python benchmarks/levels45.py [--threads 2] [--l4-bins 4000 8000] [--l4-ours-bins 14500]
                                  [--l5-bins 25000 50000] [--json benchmarks/results/levels45_cpu.json]

Level 4: contig-sized synthetic Hi-C graphs with human-like structure (every pair within 50 kb, self
loops, long-range edges with a 1/distance decay up to the target density, symmetric), the default module
(256 dim, 16 heads, edge_dim 32, 8 raw edge features). On each ``--l4-bins`` graph, side by side: our GAT
layer, torch_geometric GATConv with the same weights on the same inputs (which builds [E, H, D]
messages; outputs compared), our attention kernel alone, and the whole level-4 module; on the larger
``--l4-ours-bins`` graphs our paths only. Per path: time, edges/s, peak RSS above its inputs per edge.

Level 5: bins laid out like GRCh38 at 10 kb (24 chromosomes, lengths scaled to the bin count),
default layout (64-bin blocks, local 500 bins, 2 random blocks, synthetic trans links: 2000 at human
size, scaled with the bin count) and
module (512 dim, 32 heads). Reports the layout build at human size (309K bins) and bins/s of the
forward at the sizes that fit the machine, extrapolated linearly to 309K bins (every part of the
level is linear in the bin count: fixed key blocks per query block).

Every case runs in its own process; peak memory is that process's ru_maxrss minus the RSS after its
inputs were built.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import run_meta

ROOT = Path(__file__).resolve().parents[1]

# GRCh38 primary chromosome lengths (Mb, chr1..22, X, Y): only their proportions are used.
GRCH38_MB = [248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80, 135.09, 133.28,
             114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71, 50.82, 156.04, 57.23]
HUMAN_BINS_10KB = 309_000


def rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        import os
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- synthetic inputs -------------------------------------------------------------------------------
def synthetic_graph(n: int, density: float, local_bins: int = 5, seed: int = 0):
    """Symmetric CSR by destination: |i-j| <= local_bins, plus long-range pairs with P(d) ~ 1/d."""
    import numpy as np

    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.int64)
    pairs = [np.stack([i[: n - d], i[d:]], 1) for d in range(0, local_bins + 1)]
    target = int(density * n * n / 2)
    have = sum(len(p) for p in pairs)
    need = max(0, target - have)
    if need and n > local_bins + 2:
        m = int(need * 1.15)
        a = rng.integers(0, n, m)
        d = np.exp(rng.uniform(np.log(local_bins + 1), np.log(n - 1), m)).astype(np.int64)
        b = a + d
        ok = b < n
        pairs.append(np.stack([a[ok], b[ok]], 1))
    und = np.concatenate(pairs)
    key = np.unique(und[:, 0] * n + und[:, 1])
    src, dst = key // n, key % n
    off = src != dst
    s_all = np.concatenate([src, dst[off]])
    d_all = np.concatenate([dst, src[off]])
    order = np.lexsort((s_all, d_all))
    s_all, d_all = s_all[order], d_all[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(d_all, minlength=n), out=indptr[1:])
    dist = np.abs(s_all - d_all).astype(np.float32)
    contact = rng.gamma(2.0, 1.0, len(dist)).astype(np.float32) / (1 + dist)
    feats = np.stack([np.log1p(contact), rng.normal(size=len(dist)).astype(np.float32), np.log10(dist * 1e4 + 1),
                      np.log1p(1 / (1 + dist)), dist == 0, dist <= local_bins, dist > local_bins,
                      np.zeros_like(dist)], 1).astype(np.float32)
    return indptr, s_all.astype(np.int64), feats


def human_layout(n_bins: int):
    total = sum(GRCH38_MB)
    sizes = [max(1, round(n_bins * mb / total)) for mb in GRCH38_MB]
    return [f"chr{i}" for i in list(range(1, 23)) + ["X", "Y"]], sizes


# -- cases (each in a child process) ----------------------------------------------------------------
def case_level4(graph_npz: str, threads: int, which: str) -> dict:
    """One level-4 path on one graph, in this process.

    ``module``: the whole level-4 module (node projection, chunked edge encoder, GAT layer, MLP) from raw
    inputs. ``layer``: our GAT layer (projection, attention with edge term, bias) on the encoded node and
    edge inputs; ``pyg``: ``torch_geometric`` ``GATConv`` with the same weights on the same inputs (its
    output is checked against ours after the timing); ``kernel``: our attention kernel alone, on the
    projected inputs. Peak memory is measured above the inputs each path is given.
    """
    import numpy as np
    import torch

    from genoattn import kernels
    from genoattn.levels.regulatory import RegulatoryGAT

    torch.set_num_threads(threads)
    with np.load(graph_npz) as z:
        indptr, indices, feats, build_s = z["indptr"], z["indices"], z["feats"], float(z["build_s"])
    n, E = len(indptr) - 1, len(indices)
    torch.manual_seed(0)
    x = torch.randn(n, 128)
    ip, ix, ef = torch.from_numpy(indptr), torch.from_numpy(indices), torch.from_numpy(feats)
    module = RegulatoryGAT(128, feats.shape[1]).eval()
    gat = module.gat
    out: dict = {}
    peak = None
    with torch.inference_mode():
        module(x[:64], torch.arange(65) * 0, ix[:0], ef[:0], backend="cpu")  # warm-up
        if which == "module":
            base = current_rss_mb()
            seconds = best_of(lambda: module(x, ip, ix, ef, backend="cpu"))
        else:
            xin = module.node_input(x)
            e = module.edge_encoder(ef)
            if which == "layer":
                base = current_rss_mb()
                seconds = best_of(lambda: gat(xin, ip, ix, edge_attr=e, backend="cpu"))
            elif which == "kernel":
                h = gat.lin(xin).view(n, gat.heads, gat.out_per_head)
                a_s, a_d = (h * gat.att_src).sum(-1), (h * gat.att_dst).sum(-1)
                w = gat.folded_edge_weight()
                base = current_rss_mb()
                seconds = best_of(lambda: kernels.graph_attention(h, a_s, a_d, ip, ix, e, w, backend="cpu"))
            elif which == "pyg":
                from torch_geometric.nn import GATConv

                conv = GATConv(gat.lin.in_features, gat.out_per_head, heads=gat.heads, edge_dim=e.shape[1],
                               negative_slope=gat.negative_slope, add_self_loops=False).eval()
                missing = conv.load_state_dict(gat.state_dict(), strict=False)
                if missing.missing_keys or missing.unexpected_keys:
                    raise SystemExit(f"GATConv does not take our layer's weights: {missing}")
                dst = torch.repeat_interleave(torch.arange(n), ip[1:] - ip[:-1])
                edge_index = torch.stack([ix, dst])
                base = current_rss_mb()
                seconds = best_of(lambda: conv(xin, edge_index, edge_attr=e))
                peak = rss_mb()
                diff = (conv(xin, edge_index, edge_attr=e) - gat(xin, ip, ix, edge_attr=e, backend="cpu")).abs().max()
                out["max_abs_diff_vs_ours"] = float(diff)
            else:
                raise SystemExit(f"unknown level-4 path {which!r}")
    if peak is None:
        peak = rss_mb()
    above = max(peak - base, 0.0)
    return {"level": 4, "path": which, "bins": n, "edges": E, "density": round(E / n / n, 4), "threads": threads,
            "graph_build_s": round(build_s, 2), "seconds": round(seconds, 3), "edges_per_s": round(E / seconds),
            "peak_rss_mb": round(peak, 1), "peak_above_inputs_mb": round(above, 1),
            "bytes_per_edge": round(above * 2**20 / E, 1), **out}


def case_level5(n_bins: int, threads: int, forward: bool) -> dict:
    import numpy as np
    import torch

    from genoattn.levels import chromosome as chrom

    torch.set_num_threads(threads)
    names, sizes = human_layout(n_bins)
    seq = chrom.SequenceLayout(tuple(names), tuple(sizes), 64)
    rng = np.random.default_rng(0)
    n_links = max(1, round(2000 * n_bins / HUMAN_BINS_10KB))   # 2000 trans links at human size, scaled
    pairs = rng.integers(0, seq.n_blocks, size=(n_links, 2))
    t = time.perf_counter()
    layout, stats = chrom.build_block_layout(seq, local_window=500, random_blocks=2, seed=0, trans_block_pairs=pairs)
    layout_s = time.perf_counter() - t
    out = {"level": 5, "bins": int(sum(sizes)), "tokens_padded": seq.n_tokens, "blocks": stats["n_blocks"],
           "nnz_blocks": stats["nnz_blocks"], "density": round(stats["density"], 5),
           "layout_build_s": round(layout_s, 3)}
    if forward:
        N = seq.n_tokens
        pos = seq.token_positions()
        x = torch.zeros(N, 256)
        x[torch.from_numpy(pos)] = torch.randn(len(pos), 256)
        mask = torch.zeros(N, dtype=torch.bool)
        mask[torch.from_numpy(pos)] = True
        position = torch.arange(N)
        module = chrom.ChromosomeAttention(256, 512, 32).eval()
        base = current_rss_mb()
        with torch.inference_mode():
            total = best_of(lambda: module(x, position, layout, mask, backend="cpu"))
            q, k, v = module.qkv_heads(module.in_proj(x))
            from genoattn import kernels
            kern = best_of(lambda: kernels.block_sparse_attention(q, k, v, layout, mask[None], backend="cpu"))
        peak = rss_mb()
        out.update({"forward_s": round(total, 2), "bins_per_s": round(len(pos) / total),
                    "attention_kernel_s": round(kern, 2), "kernel_bins_per_s": round(len(pos) / kern),
                    "peak_rss_mb": round(peak, 1), "peak_above_inputs_mb": round(peak - base, 1)})
    return out


REPEAT = 2


def best_of(fn, repeat: int | None = None) -> float:
    """Fastest of ``repeat`` runs (the machine is shared: the minimum is the least disturbed)."""
    times = []
    for _ in range(repeat or REPEAT):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--repeat", str(REPEAT), "--case", *args], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}",
                "case": args}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--l4-bins", type=int, nargs="*", default=[4000, 8000],
                    help="graph sizes where every level-4 path runs, GATConv included (it needs ~2.3 KB/edge)")
    ap.add_argument("--l4-ours-bins", type=int, nargs="*", default=[14500],
                    help="larger graphs for our paths only")
    ap.add_argument("--l4-density", type=float, default=0.023)
    ap.add_argument("--l5-bins", type=int, nargs="*", default=[25_000, 50_000])
    ap.add_argument("--repeat", type=int, default=2, help="timings are the best of this many runs")
    ap.add_argument("--json", default=None)
    ap.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    global REPEAT
    REPEAT = a.repeat
    if a.case:
        kind = a.case[0]
        if kind == "l4":
            r = case_level4(a.case[1], int(a.case[2]), a.case[3])
        else:
            r = case_level5(int(a.case[1]), int(a.case[2]), a.case[3] == "1")
        print(json.dumps(r))
        return
    import tempfile

    import numpy as np

    rows = []
    begun = run_meta.begin()
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({*a.l4_bins, *a.l4_ours_bins}):
            t0 = time.perf_counter()
            indptr, indices, feats = synthetic_graph(n, a.l4_density)
            np.savez(f"{tmp}/g{n}.npz", indptr=indptr, indices=indices, feats=feats,
                     build_s=time.perf_counter() - t0)
            del indptr, indices, feats
        cases = [(w, n) for n in a.l4_bins for w in ("layer", "pyg", "kernel", "module")]
        cases += [(w, n) for n in a.l4_ours_bins for w in ("layer", "kernel", "module")]
        for which, n in cases:
            rows.append(_child(["l4", f"{tmp}/g{n}.npz", str(a.threads), which]))
            print(json.dumps(rows[-1]), flush=True)
    rows.append(_child(["l5", str(HUMAN_BINS_10KB), str(a.threads), "0"]))
    print(json.dumps(rows[-1]), flush=True)
    for n in a.l5_bins:
        rows.append(_child(["l5", str(n), str(a.threads), "1"]))
        print(json.dumps(rows[-1]), flush=True)
    meta = run_meta.meta(begun, threads=a.threads, repeat=a.repeat, l4_density=a.l4_density)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
        print(f"wrote {a.json}; tables: python benchmarks/render_results.py")


if __name__ == "__main__":
    main()
