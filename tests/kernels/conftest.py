"""Kernel tests run the Triton kernels through the interpreter when there is no GPU. The flag must be
set before triton is first imported in the process (triton sets up its interpreter hooks on import),
so it is set here, when this directory is collected, as well as at the top of each test module."""

import os

try:
    import torch

    _cuda = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _cuda = False

if not _cuda:
    os.environ["TRITON_INTERPRET"] = "1"
