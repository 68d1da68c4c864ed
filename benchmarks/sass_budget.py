"""Static instruction budget of every Triton kernel, from its sm_90 SASS, on a machine without a GPU.

For each pattern at its level's shape (small batch, same divisibility as the real call) the real
autograd wrapper runs up to the launch (forward and backward), the launch is recorded instead
(:func:`genoattn.kernels.triton.aot.capture_launches`), and the kernel is compiled for sm_90 with each
autotune config, exactly as the JIT would specialise it. In the SASS of the main loop we count warp
instructions, MUFU.EX2 and tensor-core work, and turn them into cycles per multiprocessor per trip:

* issue   = instructions x warps / 4 schedulers
* MUFU    = EX2 x 32 lanes x warps / 16 EX2 per clock
* tensor  = multiply-adds / 2048 per clock (bf16)

and compare the largest with the exponential floor (one EX2 per score at 16 per clock, DESIGN.md).
This is a *bound from the instruction mix*, not a timing: latency, memory and occupancy can only add
to it. A kernel whose bound is far above the floor cannot meet the GPU goal whatever the GPU does;
one at the floor still has to be timed (``benchmarks/kernels.py --device cuda``).

    python benchmarks/sass_budget.py [--out benchmarks/results/sass_budget.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # real GPU configs and block sizes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

from genoattn.kernels import BlockLayout  # noqa: E402
from genoattn.kernels.triton import _flash, aot, graph  # noqa: E402
from genoattn.kernels.triton import block_sparse as tbs  # noqa: E402
from genoattn.kernels.triton import dense as tdense  # noqa: E402
from genoattn.kernels.triton import local_global as tlg  # noqa: E402

H200_SMS, H200_CLOCK_HZ = 132, 1.98e9
KERNELS = (_flash._fwd_kernel, _flash._bwd_dkdv_kernel, _flash._bwd_dq_kernel,
           graph._gat_fwd, graph._gat_bwd_dst, graph._gat_bwd_src)


def _qkv(B, H, N, D, g, dtype):
    return [torch.randn(B, H, N, D, generator=g).to(dtype).requires_grad_() for _ in range(3)]


def case_dense(g, dtype, padded=True):
    q, k, v = _qkv(2, 8, 512, 16, g, dtype)
    kpm = torch.ones(2, 512, dtype=torch.bool)
    kpm[1, 300:] = False
    return lambda: tdense.attention(q, k, v, kpm if padded else None)


def case_varlen(g, dtype):
    lengths = torch.tensor([168, 45, 300, 8, 600, 121])
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    cu[1:] = torch.cumsum(lengths, 0)
    q, k, v = (torch.randn(int(cu[-1]), 8, 16, generator=g).to(dtype).requires_grad_() for _ in range(3))
    return lambda: tdense.varlen_attention(q, k, v, cu)


def case_block_sparse(g, dtype):
    nb = 64
    m = torch.eye(nb, dtype=torch.bool) | torch.eye(nb, dtype=torch.bool).roll(1, 1)
    m[0, :] = True
    m[:, 0] = True
    layout = BlockLayout.from_dense(m | m.T, 64)
    q, k, v = _qkv(1, 32, nb * 64, 16, g, dtype)
    tok = torch.rand(1, nb * 64, generator=g) > 0.02
    return lambda: tbs.block_sparse_attention(q, k, v, layout, tok)


def case_local_global(g, dtype):
    q, k, v = _qkv(1, 16, 4096, 16, g, dtype)
    return lambda: tlg.local_global_attention(q, k, v, 200, 16)


def case_graph(g, dtype):
    N, deg, H, D, F = 512, 20, 16, 16, 32
    src = torch.randint(0, N, (N * deg,), generator=g)
    indptr = torch.arange(0, N * deg + 1, deg)
    h = torch.randn(N, H, D, generator=g).to(dtype).requires_grad_()
    a_src, a_dst = (torch.randn(N, H, generator=g).to(dtype).requires_grad_() for _ in range(2))
    ea = torch.randn(N * deg, F, generator=g).to(dtype)
    w = torch.randn(F, H, generator=g).to(dtype).requires_grad_()
    return lambda: graph.graph_attention(h, a_src, a_dst, indptr, src, ea, w)


CASES = {
    "level 1 dense, key padding": case_dense,
    "level 1 dense, no mask": lambda g, dt: case_dense(g, dt, padded=False),
    "level 2-3 varlen": case_varlen,
    "level 5 block-sparse": case_block_sparse,
    "level 6 local-global": case_local_global,
    "level 4 graph (GAT)": case_graph,
}


def launches_of(case, dtype):
    g = torch.Generator().manual_seed(0)
    with aot.capture_launches(*KERNELS) as launches:
        out = CASES[case](g, dtype)()
        out.float().sum().backward()
    return launches


def items_per_trip(c: dict) -> int:
    if "BLOCK" in c:
        return c["BLOCK"] ** 2
    return c["BLOCK_E"] * 16  # edges x the 16 heads of a program


def analyse(case, dtype, quick=False):
    rows = []
    seen = set()
    for launch in launches_of(case, dtype):
        if launch.name in seen:
            continue
        seen.add(launch.name)
        configs = launch.configs()
        if quick:  # the shallowest pipeline only
            configs = [c for c in configs if c[2] == min(c[2] for c in configs)]
        for consts, warps, stages in configs:
            compiled = aot.compile_kernel(launch.kernel, launch.args, consts, num_warps=warps, num_stages=stages)
            b = aot.loop_budget(aot.sass(compiled), items_per_trip(consts), warps)
            f = b.fast()
            rows.append(dict(case=case, kernel=launch.name, dtype=str(dtype).replace("torch.", ""),
                             num_warps=warps, num_stages=stages, block_e=consts.get("BLOCK_E"), items_per_trip=b.items,
                             loop_instructions=b.instructions, ex2=b.ex2, local_memory_ops=b.local_memory,
                             instructions_per_32_items=round(b.instructions_per_item, 2),
                             ex2_per_item=round(b.ex2_per_item, 3),
                             issue_cycles=b.issue_cycles, ex2_cycles=b.ex2_cycles, tensor_cycles=b.tensor_cycles,
                             bound_by=b.bound_by, vs_exp_floor=round(b.vs_exp_floor, 3),
                             bound_items_per_s_h200=H200_SMS * H200_CLOCK_HZ * b.items / b.bound_cycles,
                             skippable_instructions=b.skippable,
                             unmasked_instructions_per_32_items=round(f.instructions_per_item, 2),
                             unmasked_vs_exp_floor=round(f.vs_exp_floor, 3),
                             opcodes=b.opcodes))
    return rows


def best_rows(rows):
    best = {}
    for r in rows:
        key = (r["case"], r["kernel"])
        if key not in best or r["vs_exp_floor"] < best[key]["vs_exp_floor"]:
            best[key] = r
    return list(best.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES), metavar="CASE")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--quick", action="store_true", help="one autotune config per warp count")
    ap.add_argument("--out", default=str(HERE / "results" / "sass_budget.json"))
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    rows = []
    for case in args.cases:
        rows += analyse(case, dtype, args.quick)
        print(f"# {case}: {len(rows)} kernel variants so far", file=sys.stderr, flush=True)
    print("| pattern | kernel | warps/stages (edges per chunk) | instr. per 32 items | EX2 per item | bound by | "
          "bound / exp floor | spills | bound on H200 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in best_rows(rows):
        gat = r["kernel"].startswith("_gat")
        unit = "edge-heads" if gat else "scores"
        instr, vs = f"{r['instructions_per_32_items']}", f"{r['vs_exp_floor']}x"
        if gat:  # 16 multiply-adds (and 16 bf16 -> fp32 conversions) per edge-head bound it, not exp
            vs = "n/a"
        if r["skippable_instructions"] and not gat:  # masked block pairs | pairs without a per-score predicate
            instr += f" \\| {r['unmasked_instructions_per_32_items']}"
            vs += f" \\| {r['unmasked_vs_exp_floor']}x"
        cfg = f"{r['num_warps']}/{r['num_stages']}" + (f", {r['block_e']} edges" if r["block_e"] else "")
        print(f"| {r['case']} | {r['kernel']} | {cfg} | {instr} | "
              f"{r['ex2_per_item']} | {r['bound_by']} | {vs} | {r['local_memory_ops']} | "
              f"{r['bound_items_per_s_h200'] / 1e12:.2f} T {unit}/s |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(triton=__import__("triton").__version__, torch=torch.__version__,
                                              target="sm_90", rows=rows), indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
