"""``python -m genoattn.smoke``: does this installation work? Run at build time by every container image.

Checks, in this order, each naming what failed: the heavy imports; every schema the package ships (the
config schema filled with its defaults, the sample-sheet schema) read from the installed package, not
from a checkout; ``genoattn --help``; a tiny level-1 forward pass on the selected kernel backend (seeded
weights, 256 bases of a fixed test string: a smoke test, not data), finite and of the documented shape.
Exit status 0 when all pass.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    import cooler  # noqa: F401
    import pysam  # noqa: F401
    import torch
    import zarr  # noqa: F401

    from genoattn import __version__, alphabet
    from genoattn.config import SCHEMA_PATH, defaults, validate_config
    from genoattn.io.samples import SCHEMA_PATH as SAMPLES_SCHEMA

    for path in (SCHEMA_PATH, SAMPLES_SCHEMA):
        if not path.is_file():
            raise SystemExit(f"smoke test: schema {path} is missing from the installed package (a dangling link?)")
    cfg = validate_config({"references": {"r": {"fasta": "-"}}}, check_files=False)
    assert cfg["levels"]["level1"]["window"] == defaults("levels.level1")["window"]
    import yaml

    yaml.safe_load(SAMPLES_SCHEMA.read_text())
    proc = subprocess.run([sys.executable, "-m", "genoattn.cli", "--help"], capture_output=True, text=True)
    if proc.returncode or "level1" not in proc.stdout:
        raise SystemExit(f"smoke test: `genoattn --help` failed:\n{proc.stdout}\n{proc.stderr}")
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module

    l1 = dict(defaults("levels.level1"), dim=32, heads=2, window=256)
    module, _ = build_module(lambda: level1_module(l1), "level1", None, 0)
    tokens = torch.from_numpy(alphabet.encode("ACGTTGCA" * 32)[0][None])
    with torch.no_grad():
        out = module(tokens)
    if tuple(out.shape) != (1, 256, 32) or not torch.isfinite(out).all():
        raise SystemExit(f"smoke test: level-1 forward gave shape {tuple(out.shape)}, finite {bool(torch.isfinite(out).all())}")
    print(f"genoattn {__version__} smoke test passed (torch {torch.__version__}, schemas {SCHEMA_PATH.parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
