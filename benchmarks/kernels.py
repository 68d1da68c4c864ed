"""Attention-kernel benchmark: every pattern at its level's shape (scaled to the machine), our path
and its peers in the same run.

CPU (default)::

    python benchmarks/kernels.py                       # all patterns, forward, fp32
    python benchmarks/kernels.py --patterns graph --backward

Time is wall time (median); ``cpu time`` is the process CPU time of the same calls, the steadier
number on a shared machine (with OMP_NUM_THREADS=1 it is the work done). Each (pattern,
implementation) runs in a fresh subprocess (glibc MALLOC_MMAP_THRESHOLD_=64 KiB, so
freed blocks leave the RSS): time is the median of ``--repeat`` calls
after one warm-up; peak memory is the growth of the process's peak RSS (VmHWM, reset through
/proc/self/clear_refs) during the timed calls above the RSS held before them, so it counts every
temporary the implementation allocates, not the inputs. Results: a printed table and
``benchmarks/results/kernels_cpu.json``.

GPU (one prepared run, ``--device cuda``): Triton vs SDPA (bf16, [B, 8, 512, 16]), FlexAttention
(block-sparse, local-global; compiled) and PyG GATConv (graph), in-process, peak memory from
``torch.cuda.max_memory_allocated``, and the fraction of the exponential-throughput floor reached
(DESIGN.md: with d=16 the exp unit bounds attention: floor = exps / (SMs * exp/clk/SM * clock)).
Writes ``benchmarks/results/kernels_cuda.json``.

Synthetic inputs (random tensors, a synthetic block layout / graph with the level's statistics):
no genomic data is involved.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import run_meta

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# --------------------------------------------------------------------------- shapes (per device)

SHAPES = {
    "cpu": {
        # level 1: 512-bp windows, 8 heads, d=16; 32 windows = 16 Ki tokens, ~10% padded keys
        "dense": dict(B=32, H=8, L=512, D=16),
        # level 2: codons per exon (~168 tokens), 8 heads
        "varlen": dict(S=384, mean=168, H=8, D=16),
        # level 5: genome-wide 10 kb bins (16 Ki bins ~ 164 Mbp here), 32 heads, d=16, block 64
        "block_sparse": dict(N=16384, H=32, D=16, block=64, n_chrom=6, n_random=2, n_trans=64),
        # level 6: variants of one individual, window 200, 16 global tokens, 16 heads
        "local_global": dict(N=16384, H=16, D=16, window=200, n_global=16),
        # level 4: Hi-C graph, human-like degree at 10 kb (~2% density), 16 heads, dim 256, edge_dim 32
        "graph": dict(N=5000, deg=100, H=16, D=16, F=32, fin=256),
    },
    "cuda": {
        "dense": dict(B=1024, H=8, L=512, D=16),
        "varlen": dict(S=8192, mean=168, H=8, D=16),
        "block_sparse": dict(N=310_000 // 64 * 64, H=32, D=16, block=64, n_chrom=24, n_random=2, n_trans=4096),
        "local_global": dict(N=1 << 20, H=16, D=16, window=200, n_global=16),
        "graph": dict(N=25_000, deg=500, H=16, D=16, F=32, fin=256),
    },
}

IMPLS = {
    "cpu": {
        "dense": ["ours", "ours_tiled", "sdpa", "naive", "flex"],
        "varlen": ["ours", "sdpa_loop", "sdpa_padded", "naive"],
        "block_sparse": ["ours", "flex", "sdpa_masked", "naive"],
        "local_global": ["ours", "flex", "sdpa_masked", "naive"],
        "graph": ["ours", "pyg", "naive"],
    },
    "cuda": {
        "dense": ["triton", "sdpa", "triton_nomask", "sdpa_nomask", "flex"],
        "varlen": ["triton", "sdpa_padded", "sdpa_loop"],
        "block_sparse": ["triton", "flex"],
        "local_global": ["triton", "flex"],
        "graph": ["triton", "pyg"],
    },
}

NAIVE_LIMIT_BYTES = 6 << 30  # don't start a materialised reference that needs more than this


# --------------------------------------------------------------------------- inputs

def _torch():
    import torch
    return torch


def make_dense(s, device, dtype, g):
    torch = _torch()
    q, k, v = (torch.randn(s["B"], s["H"], s["L"], s["D"], generator=g).to(device, dtype) for _ in range(3))
    kpm = torch.ones(s["B"], s["L"], dtype=torch.bool)
    # windows at contig ends are partly padding: a quarter of the windows keep a random prefix
    n_pad = s["B"] // 4
    keep = torch.randint(s["L"] // 4, s["L"], (n_pad,), generator=g)
    kpm[:n_pad] = torch.arange(s["L"])[None, :] < keep[:, None]
    return dict(q=q, k=k, v=v, kpm=kpm.to(device), tokens=s["B"] * s["L"],
                exps=s["B"] * s["H"] * s["L"] ** 2)


def make_varlen(s, device, dtype, g):
    torch = _torch()
    # exon lengths in codons: gamma-like spread around the mean, 8..600
    lengths = torch.distributions.Gamma(torch.tensor(2.0), torch.tensor(2.0 / s["mean"])).sample((s["S"],))
    lengths = lengths.round().clamp(8, 600).long()
    cu = torch.zeros(s["S"] + 1, dtype=torch.int64)
    cu[1:] = torch.cumsum(lengths, 0)
    T = int(cu[-1])
    q, k, v = (torch.randn(T, s["H"], s["D"], generator=g).to(device, dtype) for _ in range(3))
    return dict(q=q, k=k, v=v, cu=cu.to(device), lengths=lengths.tolist(), tokens=T,
                exps=int((lengths.double() ** 2).sum()) * s["H"])


def block_layout(s, g):
    """Level-5-like layout: local blocks (+-1) that never cross a chromosome end, seeded random blocks
    inside the chromosome, block 0 global (attends / attended by all), random trans links."""
    torch = _torch()
    from genoattn.kernels import BlockLayout
    bs, N = s["block"], s["N"]
    nb = -(-N // bs)
    # chromosome boundaries (in blocks): sizes roughly like human chromosomes, decreasing
    w = torch.linspace(2.0, 0.6, s["n_chrom"])
    ends = (torch.cumsum(w, 0) / w.sum() * nb).round().long()
    ends[-1] = nb
    chrom = torch.bucketize(torch.arange(nb), ends, right=True)
    m = torch.zeros(nb, nb, dtype=torch.bool)
    i = torch.arange(nb)
    for d in (-1, 0, 1):
        j = (i + d).clamp(0, nb - 1)
        m[i, j] |= chrom[i] == chrom[j]
    starts = torch.cat([torch.zeros(1, dtype=torch.long), ends[:-1]])
    for _ in range(s["n_random"]):
        lo, hi = starts[chrom], ends[chrom]
        j = lo + (torch.rand(nb, generator=g) * (hi - lo)).long()
        m[i, j] = True
    m[0, :] = True
    m[:, 0] = True
    a = torch.randint(0, nb, (s["n_trans"],), generator=g)
    b = torch.randint(0, nb, (s["n_trans"],), generator=g)
    m[a, b] = True
    m[b, a] = True
    return BlockLayout.from_dense(m, bs), m


def make_block_sparse(s, device, dtype, g):
    torch = _torch()
    layout, bm = block_layout(s, g)
    q, k, v = (torch.randn(1, s["H"], s["N"], s["D"], generator=g).to(device, dtype) for _ in range(3))
    tok = torch.rand(1, s["N"], generator=g) > 0.02  # masked bins (e.g. unmappable)
    allowed_pairs = int(bm.sum()) * s["block"] ** 2
    return dict(q=q, k=k, v=v, layout=layout.to(device), block_mask=bm.to(device), tok=tok.to(device),
                tokens=s["N"], exps=allowed_pairs * s["H"], density=float(bm.float().mean()))


def make_local_global(s, device, dtype, g):
    torch = _torch()
    q, k, v = (torch.randn(1, s["H"], s["N"], s["D"], generator=g).to(device, dtype) for _ in range(3))
    n, w, ng = s["N"], s["window"], s["n_global"]
    pairs = n * (w + 1) + 2 * ng * n
    return dict(q=q, k=k, v=v, tokens=n, exps=pairs * s["H"])


def make_graph(s, device, dtype, g):
    torch = _torch()
    N, deg = s["N"], s["deg"]
    # Hi-C-like: deg distinct in-neighbours per node, contact probability ~ 1/genomic distance
    # (Gumbel top-k sampling without replacement, rows in chunks)
    srcs = []
    j = torch.arange(N)
    for r0 in range(0, N, 512):
        i = torch.arange(r0, min(N, r0 + 512))
        dist = (i[:, None] - j[None, :]).abs().double()
        logw = -torch.log(dist.clamp_min(1.0))
        logw[dist == 0] = -math.inf
        gumbel = -torch.log(-torch.log(torch.rand(logw.shape, generator=g, dtype=torch.float64).clamp_min(1e-300)))
        srcs.append(torch.topk(logw + gumbel, deg, dim=1).indices.sort(dim=1).values)
    src = torch.cat(srcs).flatten()
    dst = torch.arange(N).repeat_interleave(deg)
    indptr = torch.zeros(N + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(dst, minlength=N), 0)
    x = torch.randn(N, s["fin"], generator=g).to(device, dtype)
    edge_attr = torch.randn(src.numel(), s["F"], generator=g).to(device, dtype)
    return dict(x=x, indptr=indptr.to(device), src=src.to(device), dst=dst.to(device), edge_attr=edge_attr,
                edges=int(src.numel()), tokens=N, exps=int(src.numel()) * s["H"])


MAKERS = {"dense": make_dense, "varlen": make_varlen, "block_sparse": make_block_sparse,
          "local_global": make_local_global, "graph": make_graph}


# --------------------------------------------------------------------------- implementations

def _flex(compiled=True):
    from torch.nn.attention.flex_attention import flex_attention
    torch = _torch()
    return torch.compile(flex_attention, dynamic=False) if compiled else flex_attention


def build(pattern, impl, inp, s, device):
    """Returns (callable taking no args and returning the output tensor, setup seconds, note)."""
    torch = _torch()
    import torch.nn.functional as F

    from genoattn import kernels
    from genoattn.kernels import cpu, reference
    backend = "triton" if impl == "triton" else "cpu"
    note = ""

    if pattern == "dense":
        q, k, v, kpm = inp["q"], inp["k"], inp["v"], inp["kpm"]
        if impl in ("ours", "triton"):
            return (lambda: kernels.attention(q, k, v, kpm, backend=backend)), 0.0, note
        if impl == "triton_nomask":
            return (lambda: kernels.attention(q, k, v, backend="triton")), 0.0, "no key padding"
        if impl == "sdpa_nomask":
            return (lambda: F.scaled_dot_product_attention(q, k, v)), 0.0, "no key padding (flash backend)"
        if impl == "ours_tiled":
            return (lambda: cpu.dense_attention(q, k, v, kpm, block_q=128)), 0.0, "query tiles of 128"
        if impl == "sdpa":
            m = kpm[:, None, None, :]
            return (lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=m)), 0.0, "bool key mask"
        if impl == "naive":
            return (lambda: reference.dense_attention(q, k, v, kpm)), 0.0, "materialised scores"
        if impl == "flex":
            from torch.nn.attention.flex_attention import create_block_mask
            t0 = time.perf_counter()
            bm = create_block_mask(lambda b, h, i, j: kpm[b, j], s["B"], None, s["L"], s["L"], device=device)
            fx = _flex()
            fx(q, k, v, block_mask=bm)
            return (lambda: fx(q, k, v, block_mask=bm)), time.perf_counter() - t0, "torch.compile"

    if pattern == "varlen":
        q, k, v, cu, lengths = inp["q"], inp["k"], inp["v"], inp["cu"], inp["lengths"]
        if impl in ("ours", "triton"):
            return (lambda: kernels.varlen_attention(q, k, v, cu, max(lengths), backend=backend)), 0.0, note
        if impl == "naive":
            return (lambda: reference.varlen_attention(q, k, v, cu)), 0.0, "materialised, per sequence"
        if impl == "sdpa_loop":
            bounds = cu.tolist()

            def run():
                outs = []
                parts = [t.split(lengths, 0) for t in (q, k, v)]
                for i in range(len(lengths)):
                    x = [t[i].transpose(0, 1)[None] for t in parts]
                    outs.append(F.scaled_dot_product_attention(*x)[0].transpose(0, 1))
                return torch.cat(outs)
            return run, 0.0, "one SDPA call per sequence"
        if impl == "sdpa_padded":
            Lm = max(lengths)
            S = len(lengths)
            lens = torch.tensor(lengths, device=q.device)
            pos = torch.arange(Lm, device=q.device)
            real = pos[None] < lens[:, None]
            idx = torch.where(real, cu[:-1, None] + pos[None], 0)

            def run():
                x = [t[idx].permute(0, 2, 1, 3) for t in (q, k, v)]
                o = F.scaled_dot_product_attention(*x, attn_mask=real[:, None, None, :])
                return o.permute(0, 2, 1, 3)[real]
            return run, 0.0, f"all {S} padded to {Lm}"

    if pattern == "block_sparse":
        q, k, v, layout, tok, bmask = inp["q"], inp["k"], inp["v"], inp["layout"], inp["tok"], inp["block_mask"]
        bs, N = s["block"], s["N"]
        if impl in ("ours", "triton"):
            return (lambda: kernels.block_sparse_attention(q, k, v, layout, tok, backend=backend)), 0.0, note
        if impl == "naive":
            return (lambda: reference.block_sparse_attention(q, k, v, layout, tok)), 0.0, "materialised scores"
        if impl == "sdpa_masked":
            def run():
                m = reference.block_layout_mask(layout, N, q.device) & tok[:, None, :]
                return F.scaled_dot_product_attention(q, k, v, attn_mask=m[:, None])
            return run, 0.0, "dense SDPA, [N, N] bool mask"
        if impl == "flex":
            from torch.nn.attention.flex_attention import create_block_mask
            t0 = time.perf_counter()
            bm = create_block_mask(lambda b, h, i, j: bmask[i // bs, j // bs] & tok[b, j], 1, None, N, N,
                                   device=device, BLOCK_SIZE=bs)
            fx = _flex()
            fx(q, k, v, block_mask=bm)
            return (lambda: fx(q, k, v, block_mask=bm)), time.perf_counter() - t0, "torch.compile, same block mask"

    if pattern == "local_global":
        q, k, v = inp["q"], inp["k"], inp["v"]
        N, w, ng = s["N"], s["window"], s["n_global"]
        if impl in ("ours", "triton"):
            return (lambda: kernels.local_global_attention(q, k, v, w, ng, backend=backend)), 0.0, note
        if impl == "naive":
            return (lambda: reference.local_global_attention(q, k, v, w, ng)), 0.0, "materialised scores"
        if impl == "sdpa_masked":
            def run():
                m = reference.local_global_mask(N, w, ng, device=q.device)
                return F.scaled_dot_product_attention(q, k, v, attn_mask=m)
            return run, 0.0, "dense SDPA, [N, N] bool mask"
        if impl == "flex":
            from torch.nn.attention.flex_attention import create_block_mask
            half = w // 2
            t0 = time.perf_counter()
            bm = create_block_mask(lambda b, h, i, j: ((i - j).abs() <= half) | (i < ng) | (j < ng), 1, None, N, N,
                                   device=device)
            fx = _flex()
            fx(q, k, v, block_mask=bm)
            return (lambda: fx(q, k, v, block_mask=bm)), time.perf_counter() - t0, "torch.compile"

    if pattern == "graph":
        x, indptr, src, dst, ea = inp["x"], inp["indptr"], inp["src"], inp["dst"], inp["edge_attr"]
        H, D = s["H"], s["D"]
        from torch_geometric.nn import GATConv
        torch.manual_seed(0)
        conv = GATConv(s["fin"], D, heads=H, edge_dim=s["F"], negative_slope=0.2, add_self_loops=False,
                       concat=True).to(device, x.dtype)
        if impl == "pyg":
            edge_index = torch.stack([src, dst])
            return (lambda: conv(x, edge_index, edge_attr=ea)), 0.0, "GATConv(256, 16, heads=16, edge_dim=32)"

        def fold():
            lin = conv.lin if getattr(conv, "lin", None) is not None else conv.lin_src
            h = lin(x).view(-1, H, D)
            a_src = (h * conv.att_src.view(1, H, D)).sum(-1)
            a_dst = (h * conv.att_dst.view(1, H, D)).sum(-1)
            w_edge = torch.einsum("hcf,hc->fh", conv.lin_edge.weight.view(H, D, -1), conv.att_edge.view(H, D))
            return h, a_src, a_dst, w_edge

        if impl in ("ours", "triton"):
            def run():
                h, a_src, a_dst, w_edge = fold()
                out = kernels.graph_attention(h, a_src, a_dst, indptr, src, ea, w_edge, 0.2, backend=backend)
                return out.reshape(-1, H * D) + conv.bias
            return run, 0.0, "same layer (projection + attention + bias)"
        if impl == "naive":
            def run():
                h, a_src, a_dst, w_edge = fold()
                return reference.graph_attention(h, a_src, a_dst, indptr, src, ea, w_edge, 0.2).reshape(-1, H * D)
            return run, 0.0, "materialised [N, N, H] scores"
    raise KeyError(f"{pattern}/{impl}")


def naive_bytes(pattern, s, inp):
    if pattern == "dense":
        return 3 * s["B"] * s["H"] * s["L"] ** 2 * 4
    if pattern in ("block_sparse", "local_global"):
        return 3 * s["H"] * s["N"] ** 2 * 4
    if pattern == "graph":
        return 4 * s["N"] ** 2 * s["H"] * 4
    return 0


# --------------------------------------------------------------------------- memory (CPU)

def _rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- one measurement

def measure_one(pattern, impl, device, dtype_name, repeat, backward, seed=0):
    torch = _torch()
    dtype = getattr(torch, dtype_name)
    s = dict(SHAPES[device][pattern])
    torch.manual_seed(seed)  # every implementation sees the same inputs
    g = torch.Generator().manual_seed(seed)
    kind, device = device, tensor_device(device)
    inp = MAKERS[pattern](s, device, dtype, g)
    row = dict(pattern=pattern, impl=impl, device=device, kind=kind, dtype=dtype_name, shape=s,
               tokens=inp["tokens"], edges=inp.get("edges"), backward=backward, threads=torch.get_num_threads())
    if impl == "naive" and naive_bytes(pattern, s, inp) > NAIVE_LIMIT_BYTES:
        row.update(status="skipped", note=f"would materialise ~{naive_bytes(pattern, s, inp) / 2**30:.0f} GiB")
        return row
    if impl == "sdpa_masked" and s.get("N", 0) ** 2 * (1 + 4 * s["H"]) > NAIVE_LIMIT_BYTES * 8:
        row.update(status="skipped", note="mask too large")
        return row
    try:
        fn, setup_s, note = build(pattern, impl, inp, s, device)
        if backward:
            leaves = [t for t in inp.values() if torch.is_tensor(t) and t.is_floating_point()]
            for t in leaves:
                t.requires_grad_(True)

            def call():
                out = fn()
                out.backward(torch.ones_like(out))
                return out
        else:
            def call():
                with torch.no_grad():
                    return fn()
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        out = call()  # warm-up (and compile)
        sync()
        del out
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            have_reset = _reset_peak()
            base = _rss_kib("VmRSS") * 1024
        times, cpu_times = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = call()
            sync()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            del out
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated() - base
        else:
            peak = _rss_kib("VmHWM") * 1024 - base if have_reset else None
        t = statistics.median(times)
        row.update(status="ok", seconds=t, cpu_seconds=statistics.median(cpu_times), setup_seconds=setup_s, note=note, peak_bytes=peak,
                   tokens_per_s=inp["tokens"] / t, exps=inp.get("exps"))
        if inp.get("edges"):
            row["edges_per_s"] = inp["edges"] / t
            row["bytes_per_edge"] = peak / inp["edges"] if peak is not None else None
        if "density" in inp:
            row["block_density"] = inp["density"]
    except Exception as exc:  # a peer that does not run here is a result, not a crash
        row.update(status="failed", note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    return row


# --------------------------------------------------------------------------- floor (GPU)

def exp_floor_seconds(exps, sms, clock_ghz, exp_per_clk_per_sm=16):
    """Time to evaluate ``exps`` exponentials on the special-function units: the floor for d=16."""
    return exps / (sms * exp_per_clk_per_sm * clock_ghz * 1e9)


# --------------------------------------------------------------------------- driver

def fmt_bytes(b):
    if b is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024:
            return f"{b:.0f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB"


HEADER = (f"{'pattern':13s} {'impl':12s} {'time':>10s} {'cpu time':>10s} {'tok/s':>10s} {'edges/s':>10s} {'peak mem':>10s} "
          f"{'B/edge':>7s} {'floor%':>6s}  note")


def row_line(r):
    if r["status"] != "ok":
        return f"{r['pattern']:13s} {r['impl']:12s} {r['status']:>10s} {'':61s}  {r.get('note', '')}"
    eps = f"{r['edges_per_s']:.3g}" if r.get("edges_per_s") else "-"
    bpe = f"{r['bytes_per_edge']:.0f}" if r.get("bytes_per_edge") is not None else "-"
    fl = f"{100 * r['floor_fraction']:.0f}" if r.get("floor_fraction") else "-"
    cpu = f"{1e3 * r['cpu_seconds']:8.1f}ms" if r.get("cpu_seconds") is not None else "-"
    return (f"{r['pattern']:13s} {r['impl']:12s} {1e3 * r['seconds']:8.1f}ms {cpu:>10s} {r['tokens_per_s']:10.3g} {eps:>10s} "
            f"{fmt_bytes(r['peak_bytes']):>10s} {bpe:>7s} {fl:>6s}  {r.get('note', '')}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--patterns", nargs="*", default=list(MAKERS))
    ap.add_argument("--impls", nargs="*", default=None, help="restrict to these implementations")
    ap.add_argument("--dtype", default=None, help="float32 (cpu default) / bfloat16 (cuda default)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backward", action="store_true", help="time forward + backward")
    ap.add_argument("--no-flex", action="store_true", help="skip compiled FlexAttention (slow to compile on CPU)")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, one repeat: checks the script runs")
    ap.add_argument("--clock-ghz", type=float, default=1.98, help="GPU SM clock for the exp floor (H200 boost)")
    ap.add_argument("--exp-per-clk-per-sm", type=int, default=16, help="MUFU ex2 throughput per SM per clock")
    ap.add_argument("--out", default=None)
    ap.add_argument("--one", nargs=2, metavar=("PATTERN", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    if args.smoke:
        _smoke_shapes(args.device)
        if args.device == "cuda" and not _torch().cuda.is_available():
            # no GPU: run the GPU list on CPU tensors through the Triton interpreter (import/plumbing check)
            os.environ["GENOATTN_BENCH_SMOKE_CPU"] = "1"
            os.environ["TRITON_INTERPRET"] = "1"
            dtype = args.dtype or "float32"

    if args.one:
        row = measure_one(args.one[0], args.one[1], args.device, dtype, args.repeat, args.backward)
        print("RESULT " + json.dumps(row))
        return 0

    rows = []
    begun = run_meta.begin()
    for pattern in args.patterns:
        for impl in IMPLS[args.device][pattern]:
            if args.impls and impl not in args.impls:
                continue
            if args.no_flex and impl == "flex":
                continue
            if args.device == "cpu":
                cmd = [sys.executable, __file__, "--one", pattern, impl, "--device", "cpu", "--dtype", dtype,
                       "--repeat", str(args.repeat)] + (["--backward"] if args.backward else []) + \
                      (["--smoke"] if args.smoke else [])
                # large blocks through mmap so that freed memory leaves the RSS (peak RSS = live peak)
                env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 16))
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if line:
                    row = json.loads(line[-1][7:])
                else:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                    row = dict(pattern=pattern, impl=impl, status="failed", note=f"rc={proc.returncode}: {tail[0][:200]}")
            else:
                row = measure_one(pattern, impl, args.device, dtype, args.repeat, args.backward)
            if tensor_device(args.device) == "cuda" and row.get("status") == "ok" and row.get("exps"):
                import torch
                props = torch.cuda.get_device_properties(0)
                floor = exp_floor_seconds(row["exps"], props.multi_processor_count, args.clock_ghz,
                                          args.exp_per_clk_per_sm)
                row["floor_seconds"] = floor
                row["floor_fraction"] = floor / row["seconds"]
            rows.append(row)
            if len(rows) == 1:
                print(HEADER + "\n" + "-" * len(HEADER))
            print(row_line(row), flush=True)
    meta = dict(device=args.device, dtype=dtype, backward=args.backward, repeat=args.repeat,
                host=platform.node(), cpu_count=os.cpu_count(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                python=platform.python_version(), torch=_torch().__version__, smoke=args.smoke,
                load_average_1min=run_meta.meta(begun)["load_average_1min"],
                command=" ".join([Path(sys.executable).name] + sys.argv), time=time.strftime("%Y-%m-%d %H:%M:%S"))
    out = Path(args.out) if args.out else RESULTS / f"kernels_{args.device}{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"\nwrote {out}")
    return 0


def tensor_device(kind):
    """Where the tensors live: the GPU mode's smoke test runs the GPU list on CPU tensors (Triton
    interpreter) when no GPU is present."""
    if kind == "cuda" and os.environ.get("GENOATTN_BENCH_SMOKE_CPU") == "1":
        return "cpu"
    return kind


def _smoke_shapes(device):
    small = {"dense": dict(B=2, H=2, L=64, D=16), "varlen": dict(S=8, mean=40, H=2, D=16),
             "block_sparse": dict(N=256, H=2, D=16, block=64, n_chrom=2, n_random=1, n_trans=2),
             "local_global": dict(N=256, H=2, D=16, window=20, n_global=4),
             "graph": dict(N=64, deg=8, H=2, D=16, F=4, fin=32)}
    SHAPES[device] = small


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    raise SystemExit(main())
