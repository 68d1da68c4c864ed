"""Backend selection: Triton on CUDA, the CPU path elsewhere, with an override; and the dtype the
Triton kernels compute in.

Order of precedence: the ``backend=`` argument, then the ``GENOATTN_KERNEL_BACKEND``
environment variable, then the value set by :func:`set_default_backend` (the workflow sets it
from the config key ``kernels.backend``), then ``auto``. Likewise for the attention dtype:
``GENOATTN_ATTENTION_DTYPE``, then :func:`set_attention_dtype` (``kernels.attention_dtype``).
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "triton", "cpu", "reference")
ENV_VAR = "GENOATTN_KERNEL_BACKEND"
_default = "auto"
ATTENTION_DTYPES = ("auto", "float32", "bfloat16", "float16")
DTYPE_ENV_VAR = "GENOATTN_ATTENTION_DTYPE"
_attention_dtype = "auto"


def configure(kernels_cfg: dict | None) -> None:
    """Process-wide defaults from the config's ``kernels`` section (backend, attention_dtype)."""
    cfg = kernels_cfg or {}  # the validated kernels section; None (outside a workflow): the defaults
    set_default_backend(cfg["backend"] if cfg else "auto")
    set_attention_dtype(cfg["attention_dtype"] if cfg else "auto")


def set_attention_dtype(name: str) -> None:
    global _attention_dtype
    if name not in ATTENTION_DTYPES:
        raise ValueError(f"kernels.attention_dtype={name!r} is not allowed; allowed: {', '.join(ATTENTION_DTYPES)}")
    _attention_dtype = name


def attention_dtype(x):
    """The dtype the Triton kernels should see for inputs like ``x`` (None: as they are).

    auto: bfloat16 for float32 inputs on CUDA from compute capability 8.0 (tensor cores; the kernels
    accumulate and take the softmax in fp32), float16 on older GPUs (no bfloat16 tensor cores), the
    inputs' own dtype elsewhere; bfloat16 asked for on an older GPU is an error with the fix. float32 keeps fp32 inputs exact (fp32 dots,
    no tensor cores: ~6x the exponential floor at head dim 16, benchmarks/sass_budget.py)."""
    import torch

    name = os.environ.get(DTYPE_ENV_VAR) or _attention_dtype
    if name not in ATTENTION_DTYPES:
        raise ValueError(f"{DTYPE_ENV_VAR}={name!r} is not allowed; allowed: {', '.join(ATTENTION_DTYPES)}")
    if not x.is_floating_point():
        return None
    capability = torch.cuda.get_device_capability(x.device) if x.is_cuda else None
    if name == "auto":
        return cuda_dtype(capability) if x.is_cuda and x.dtype == torch.float32 else None
    if name == "bfloat16" and capability is not None:
        check_bfloat16(capability)
    want = getattr(torch, name)
    return None if x.dtype == want else want


def cuda_dtype(capability: tuple[int, int]):
    """The auto attention dtype on a GPU of this compute capability: bfloat16 from Ampere (8.0) on, float16
    before (Volta and Turing have float16 tensor cores but no bfloat16 ones)."""
    import torch

    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


def check_bfloat16(capability: tuple[int, int]) -> None:
    if tuple(capability) < (8, 0):
        raise ValueError(f"kernels.attention_dtype is bfloat16 but this GPU (compute capability "
                         f"{capability[0]}.{capability[1]}) has no bfloat16 tensor cores (they start at 8.0, Ampere). "
                         "Fix: kernels.attention_dtype: auto (float16 here) or float32")


def describe(device) -> dict:
    """What a store records of the attention it was computed with: device, backend, attention dtype."""
    import torch

    device = torch.device(device) if not isinstance(device, torch.device) else device
    backend = resolve(None, device)
    name = os.environ.get(DTYPE_ENV_VAR) or _attention_dtype
    if backend != "triton":
        dtype = "float32 (the level's dtype; the attention dtype applies to the Triton kernels only)"
    elif name == "auto" and device.type == "cuda":
        dtype = str(cuda_dtype(torch.cuda.get_device_capability(device))).removeprefix("torch.")
    else:
        dtype = "bfloat16" if name == "auto" else name
    return {"device": str(device), "backend": backend, "attention_dtype": dtype}


def set_default_backend(name: str) -> None:
    global _default
    _check(name, "kernels.backend")
    _default = name


def _check(name: str, where: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"{where}={name!r} is not a kernel backend; allowed: {', '.join(BACKENDS)}")


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(backend: str | None, device) -> str:
    """The concrete backend ('triton', 'cpu' or 'reference') for tensors on ``device``."""
    name = backend or os.environ.get(ENV_VAR) or _default
    _check(name, "backend" if backend else ENV_VAR if os.environ.get(ENV_VAR) else "kernels.backend")
    if name == "auto":
        is_cuda = getattr(device, "type", str(device)) == "cuda"
        return "triton" if is_cuda and triton_available() else "cpu"
    if name == "triton" and not triton_available():
        raise RuntimeError("kernel backend 'triton' was asked for but triton is not installed: "
                           "pip install 'triton>=3.2,<3.9' (Linux), or use backend 'cpu'")
    return name
