"""Backend selection: Triton on CUDA, the CPU path elsewhere, with an override.

Order of precedence: the ``backend=`` argument, then the ``GENOATTN_KERNEL_BACKEND``
environment variable, then the value set by :func:`set_default_backend` (the workflow sets it
from the config key ``kernels.backend``), then ``auto``.
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "triton", "cpu", "reference")
ENV_VAR = "GENOATTN_KERNEL_BACKEND"
_default = "auto"


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
