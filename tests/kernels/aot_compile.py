"""Compile every Triton kernel for a CUDA target (sm_90) without a GPU: catches what the interpreter
does not (non-constexpr globals, type errors, invalid layouts). Run as a script in a process without
TRITON_INTERPRET; prints one line per kernel variant and exits 1 on any failure.

    python tests/kernels/aot_compile.py [--quick]
"""

from __future__ import annotations

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)

from genoattn.kernels.triton import _flash, aot, graph  # noqa: E402


def compile_one(kernel, ptr_types, floats, consts, name):
    fn = aot.jit_function(kernel)
    args = {a: ptr_types.get(a) or ("fp32" if a in floats else "i32") for a in fn.arg_names if a not in consts}
    try:
        aot.compile_kernel(kernel, args, consts, num_warps=4, num_stages=2)
        print(f"ok      {name}")
        return True
    except Exception as exc:  # report every failing variant
        print(f"FAILED  {name}: {type(exc).__name__}: {str(exc)[-800:]}")
        return False


def main(quick: bool) -> int:
    ok = True
    dtypes = ["bf16"] if quick else ["bf16", "fp16", "fp32"]
    variants = [(True, True), (False, False)] if quick else [(s, l) for s in (False, True) for l in (False, True)]
    for dt in dtypes:
        for sparse, local in variants:
            base = dict(HAS_KBIAS=True, HAS_SEG=local, LOCAL=local, SPARSE=sparse, DOT_F32=(dt == "fp32"),
                        BLOCK=64, BLOCK_D=16)
            ptrs = {n: f"*{dt}" for n in ("Q", "K", "V", "O", "DO", "DK", "DV", "DQ")}
            ptrs.update(LSE="*fp32", DELTA="*fp32", KBIAS="*fp32", SEG="*i32", BPTR="*i32", BIDX="*i32",
                        CPTR="*i32", CIDX="*i32")
            tag = f"{dt} sparse={sparse} local={local}"
            ok &= compile_one(_flash._fwd_kernel, ptrs, {"qk_scale"}, base, f"flash fwd {tag}")
            ok &= compile_one(_flash._bwd_dkdv_kernel, ptrs, {"sm_scale", "qk_scale"}, base, f"flash dkdv {tag}")
            ok &= compile_one(_flash._bwd_dq_kernel, ptrs, {"sm_scale", "qk_scale"}, base, f"flash dq {tag}")
        ptrs = {n: f"*{dt}" for n in ("Hf", "ASRC", "ADST", "EB", "O", "DO", "DH")}
        ptrs.update(INDPTR="*i64", INDICES="*i64", LSE="*fp32", DELTA="*fp32", DZ="*fp32", P="*fp32", DADST="*fp32",
                    CPTR="*i64", CPERM="*i64", CDST="*i64", DASRC="*fp32")
        c = dict(HAS_EB=True, DOT_F32=(dt == "fp32"), BLOCK_E=32, BLOCK_D=16)
        ok &= compile_one(graph._gat_fwd, ptrs, {"slope"}, c, f"gat fwd {dt}")
        ok &= compile_one(graph._gat_bwd_dst, ptrs, {"slope"}, c, f"gat bwd dst {dt}")
        ok &= compile_one(graph._gat_bwd_src, ptrs, set(), dict(DOT_F32=(dt == "fp32"), BLOCK_E=32, BLOCK_D=16),
                          f"gat bwd src {dt}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main("--quick" in sys.argv))
