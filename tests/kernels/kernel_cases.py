"""Shared cases and the three-way check for the kernel tests (fresh random inputs every run).

Three-way: a float64 golden from ``genoattn.kernels.reference``, the same reference run in the test
dtype (its error is the budget of that dtype), and the path under test. The path passes when its
error against the golden is within a small multiple of the reference's own error plus a floor.
"""

from __future__ import annotations

import torch

from genoattn.kernels import reference as ref
from genoattn.kernels.layouts import BlockLayout

FLOOR = {torch.float64: 1e-9, torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}
FACTOR = 4.0


_calls: dict[str, int] = {}


def rng():
    """A generator seeded from the test's id (and how often it asked): every run of a test sees the same
    inputs, so a tolerance is met or not, never by luck. GENOATTN_TEST_SEED=<n> shifts every seed (explore
    other inputs: `for s in 1 2 3; do GENOATTN_TEST_SEED=$s pytest tests/kernels; done`)."""
    import hashlib
    import os

    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    _calls[test] = _calls.get(test, 0) + 1
    key = f"{test}#{_calls[test]}#{os.environ.get('GENOATTN_TEST_SEED', '0')}"
    g = torch.Generator()
    g.manual_seed(int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little"))
    return g


def err(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def three_way(fn, golden_fn, inputs, dtype, device="cpu", tensor_args=None):
    """Run ``fn`` (path under test) and ``golden_fn`` (reference) forward + backward.

    inputs: list of float tensors (fresh random) that receive gradients.
    Returns a dict of errors; asserts the three-way budget for output and every gradient.
    """
    ins = [x.detach().to(device=device, dtype=dtype).requires_grad_() for x in inputs]
    ins_ref = [x.detach().to(device=device, dtype=dtype).requires_grad_() for x in inputs]
    ins64 = [x.detach().to(device=device, dtype=torch.float64).requires_grad_() for x in inputs]
    # the float64 reference on the inputs rounded to dtype: the error no dtype implementation can avoid
    insr = [x.detach().to(device=device, dtype=dtype).to(torch.float64).requires_grad_() for x in inputs]
    out = fn(*ins)
    out_ref = golden_fn(*ins_ref)
    out64 = golden_fn(*ins64)
    outr = golden_fn(*insr)
    assert out.shape == out64.shape and out.dtype == dtype
    assert torch.isfinite(out).all(), "non-finite output"
    grad_out = torch.randn(out64.shape, dtype=torch.float64, generator=rng()).to(device)
    g = torch.autograd.grad(out, ins, grad_out.to(dtype), allow_unused=True)
    g_ref = torch.autograd.grad(out_ref, ins_ref, grad_out.to(dtype), allow_unused=True)
    g64 = torch.autograd.grad(out64, ins64, grad_out, allow_unused=True)
    gr = torch.autograd.grad(outr, insr, grad_out.to(dtype).to(torch.float64), allow_unused=True)
    report = {}
    pairs = [("out", out, out_ref, out64, outr)] + [
        (f"grad{i}", a, b, c, d) for i, (a, b, c, d) in enumerate(zip(g, g_ref, g64, gr))]
    for name, ours, theirs, gold, rounded in pairs:
        if gold is None:
            continue
        assert ours is not None, f"{name}: no gradient"
        assert torch.isfinite(ours).all(), f"{name}: non-finite"
        e_ours, e_ref = err(ours, gold), max(err(theirs, gold), err(rounded, gold))
        scale = max(1.0, gold.abs().max().item())
        budget = FACTOR * e_ref + FLOOR[dtype] * scale
        report[name] = (e_ours, e_ref)
        assert e_ours <= budget, (f"{name}: error {e_ours:.3g} > budget {budget:.3g} (reference in dtype, or exact "
                                  f"on the rounded inputs: {e_ref:.3g})")
    return out, report


def qkv(B, H, L, D, g):
    return [torch.randn(B, H, L, D, generator=g) for _ in range(3)]


def padding_mask(B, L, g, empty_row=True):
    """Random key padding with one batch element that has no real key at all (when B > 1)."""
    m = torch.rand(B, L, generator=g) > 0.3
    m[:, 0] = True
    if empty_row and B > 1:
        m[-1] = False
    return m


def cu_seqlens(lengths):
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    cu[1:] = torch.cumsum(torch.tensor(lengths), 0)
    return cu


def random_layout(n_tokens, block, g, density=0.5):
    nb = -(-n_tokens // block)
    bm = torch.rand(nb, nb, generator=g) < density
    bm[torch.arange(nb), torch.arange(nb)] = True
    if nb > 1:
        bm[1] = False  # a query block with no key block: zeros
    return BlockLayout.from_dense(bm, block)


def random_graph(N, avg_deg, g, isolated=(3,)):
    """A simple graph (no duplicate edges) as CSR by destination; nodes in ``isolated`` have no in-edge."""
    E = N * avg_deg
    flat = torch.randperm(N * N, generator=g)[:E]
    dst, src = flat // N, flat % N
    keep = ~torch.isin(dst, torch.tensor(isolated))
    dst, src = dst[keep], src[keep]
    order = torch.argsort(dst * N + src)
    dst, src = dst[order], src[order]
    indptr = torch.zeros(N + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(dst, minlength=N), 0)
    return indptr, src, dst


def gat_inputs(N, E, H, D, F, g):
    return [torch.randn(N, H, D, generator=g), torch.randn(N, H, generator=g), torch.randn(N, H, generator=g),
            torch.randn(E, F, generator=g), torch.randn(F, H, generator=g) / F ** 0.5]


golden = ref
