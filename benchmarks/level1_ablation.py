"""Why the first level-1 layer learned only base composition: the same training, layer variants side by side.

    python benchmarks/level1_ablation.py --tokens results/yeast_R64/tokens.zarr --steps 600 \
        [--threads 2] [--json benchmarks/results/level1_ablation.json]

Every variant is trained by the same loop (genoattn.training.loop.train, masked-base prediction on the
training chromosomes of the yeast split, batch 32, lr 1e-3, 100 warmup steps, cosine decay) for the same
number of steps, and scored on the validation chromosomes (chrXII, chrXIV, chrXVI; the held-out grid
protocol, all their windows). Variants:

* ``learned positions, 1 block``: the layer as it was (a learned absolute position embedding added to
  the base embedding, one pre-norm block), rebuilt here;
* ``rotary positions, 1 block``: the same with rotary position embeddings of q and k instead;
* ``rotary positions, 2 blocks``;
* ``rotary positions, 2 blocks + convolution``: the present default layer (depthwise convolution over 9
  bases before the blocks).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


class LearnedPositions(nn.Module):
    """The first level-1 layer: base composition embedding + learned absolute positions, one block."""

    def __init__(self, dim=128, heads=8, window=512):
        super().__init__()
        from genoattn import alphabet
        from genoattn.levels.nucleotide import NucleotideBlock

        self.dim, self.heads, self.window = dim, heads, window
        self.base = nn.Parameter(torch.randn(4, dim) * 0.5)
        self.register_buffer("composition", torch.from_numpy(alphabet.COMPOSITION.copy()), persistent=False)
        self.pos = nn.Parameter(torch.randn(window, dim) * 0.02)
        self.block = NucleotideBlock(dim, heads)
        half = dim // heads // 2
        self.register_buffer("cos", torch.ones(window, half), persistent=False)   # no rotation
        self.register_buffer("sin", torch.zeros(window, half), persistent=False)

    def forward(self, tokens, mask=None, backend=None, checkpoint_blocks=False):
        from genoattn import alphabet

        mask = tokens != alphabet.PAD if mask is None else mask
        x = self.composition[tokens.long()] @ self.base + self.pos[: tokens.shape[1]]
        W = tokens.shape[1]
        return self.block(x, mask, self.cos[:W], self.sin[:W], backend)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args(argv)

    from genoattn.config import defaults
    from genoattn.levels.nucleotide import NucleotideAttention
    from genoattn.training.loop import loop_options, train
    from genoattn.training.masked_bases import MaskedBases
    from genoattn.training.split import split_contigs
    from genoattn.io.store import read_attrs

    torch.set_num_threads(a.threads)
    split = split_contigs(list(read_attrs(a.tokens)["contigs"]),
                          {"test": ["chrXI", "chrXIII", "chrXV"], "validation": ["chrXII", "chrXIV", "chrXVI"]},
                          "held_out")
    cfg = {**defaults("training.level1"), "steps": a.steps, "eval_every": 0, "checkpoint_every": 0,
           "log_every": 50}
    variants = {
        "learned positions, 1 block": lambda: LearnedPositions(),
        "rotary positions, 1 block": lambda: NucleotideAttention(128, 8, 512, layers=1, conv_kernel=0),
        "rotary positions, 2 blocks": lambda: NucleotideAttention(128, 8, 512, layers=2, conv_kernel=0),
        "rotary positions, 2 blocks + convolution (default)": lambda: NucleotideAttention(128, 8, 512, layers=2,
                                                                                          conv_kernel=9),
    }
    result = {"steps": a.steps, "split": split, "options": cfg, "variants": {}}
    for name, factory in variants.items():
        torch.manual_seed(0)
        module = factory()
        obj = MaskedBases(module, a.tokens, split, cfg)
        obj.heldout.pop("test", None)  # validation only: the test chromosomes stay for the final table
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            out = train(obj, loop_options(cfg), tmp, torch.device("cpu"), {"variant": name})
        val = out["metrics"]["validation"]
        result["variants"][name] = {"validation_perplexity": val["perplexity"], "validation_accuracy": val["accuracy"],
                                    "parameters": sum(p.numel() for p in module.parameters()),
                                    "final_training_loss": out["log"][-1]["loss"], "seconds": round(time.time() - t0)}
        print(f"{name:55s} validation perplexity {val['perplexity']:.4f}  accuracy {val['accuracy']:.4f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
