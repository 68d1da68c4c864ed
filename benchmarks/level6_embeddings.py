"""What level 6's sample embeddings hold: trained vs untrained, on one cohort, in one run.

    python benchmarks/level6_embeddings.py [--config config/config.yaml] [--cohort g1k_unphased] \
        [--checkpoint data/demo/checkpoints/level6/model.safetensors] [--threads 2] \
        [--json benchmarks/results/level6_embeddings.json]

Both models have the config's levels.level6 shape; "untrained" is the seeded initial weights
(levels.level6.seed), "trained" the checkpoint. For each: the sample embeddings of every individual of
the cohort's genotypes.zarr (results/{cohort}/genotypes.zarr, `snakemake genotypes`), their variance
spectrum (share of the variance on each principal component), and the Pearson correlation of
heterozygosity (heterozygous / called diploid calls per individual) and of the alternate-allele count
with each of the first principal components, and the best linear fit (R^2) of heterozygosity from the
first 10 components.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def spectrum(emb: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(share of variance of the first k principal components, sample scores [n, k])."""
    x = emb - emb.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    share = s ** 2 / max(float((s ** 2).sum()), 1e-30)
    return share[:k], (u * s)[:, :k]


def describe(emb: np.ndarray, het: np.ndarray, alt: np.ndarray) -> dict:
    share, pcs = spectrum(emb)
    corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else 0.0  # noqa: E731
    design = np.c_[np.ones(len(het)), pcs]
    fit = np.linalg.lstsq(design, het, rcond=None)[0]
    r2 = 1 - float(((het - design @ fit) ** 2).sum() / ((het - het.mean()) ** 2).sum())
    return {"variance_share_pc1_to_pc10": [round(float(v), 4) for v in share],
            "pcs_for_99_percent": int(np.searchsorted(np.cumsum(spectrum(emb, emb.shape[1])[0]), 0.99) + 1),
            "corr_heterozygosity_pc": [round(corr(pcs[:, i], het), 3) for i in range(min(5, pcs.shape[1]))],
            "corr_alt_count_pc": [round(corr(pcs[:, i], alt), 3) for i in range(min(5, pcs.shape[1]))],
            "heterozygosity_r2_from_10_pcs": round(r2, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--cohort", default="g1k_unphased")
    ap.add_argument("--checkpoint", help="trained level-6 checkpoint (default: the config's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import torch

    from genoattn.config import load_config
    from genoattn.io.store import open_group
    from genoattn.levels.cohort import embed_samples
    from genoattn.workflow import Layout

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    L = Layout(config)
    genotypes, ld = L.path(args.cohort, "genotypes.zarr"), L.path(args.cohort, "ld_blocks.zarr")
    if not Path(genotypes).exists():
        print(f"{genotypes} does not exist: make it with `snakemake --cores 2 genotypes`", file=sys.stderr)
        return 1
    checkpoint = args.checkpoint or L.checkpoint("level6", args.cohort)
    g = open_group(genotypes)
    gt = np.asarray(g["call_genotype"][:])
    called = (gt >= 0).all(axis=2)
    het = ((gt[..., 0] != gt[..., 1]) & called).sum(axis=0) / np.maximum(called.sum(axis=0), 1)
    alt = np.where(called, (gt > 0).sum(axis=2), 0).sum(axis=0).astype(float)
    S = gt.shape[1]
    out = {"cohort": args.cohort, "samples": int(S), "variants": int(gt.shape[0]), "checkpoint": checkpoint,
           "command": " ".join(sys.argv), "models": {}}
    for name, ckpt in (("untrained (seeded)", None), ("trained", checkpoint)):
        opts = dict(config["levels"]["level6"], checkpoint=ckpt, block_embedding=False)
        t0 = time.time()
        res, identity, _ = embed_samples(genotypes, ld, (0, S), opts, device="cpu")
        out["models"][name] = describe(res["sample_embedding"], het, alt) | {"seconds": round(time.time() - t0, 1),
                                                                             "trained": identity["trained"]}
        print(name, json.dumps(out["models"][name]), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
