"""Variants per second of `genoattn effects` on the CPU, with the time of each part.

    python benchmarks/effects_speed.py --config CONFIG --reference yeast --contigs chrI chrIII \
        --threads 2 --json benchmarks/results/effects_speed.json

CONFIG is a workflow config whose level-1 to level-5 stores exist (`snakemake level3 level5` made them);
the variants are those of the demo's kind (:func:`genoattn.effects.saturation.demo_variants`: every SNV of
the first, a middle and the last codon and of the splice sites of ``--genes`` genes, an indel pair per gene,
variants between genes) on ``--contigs``, made from the config's FASTA and annotation. The job is the one
`snakemake effects` runs; its table's metadata holds the seconds per part (consequences, level-1 LLR,
level-1 windows, levels 2-3, levels 4-5).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--contigs", nargs="+", required=True)
    p.add_argument("--genes", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args(argv)

    import pandas as pd
    import pysam
    import pyarrow.parquet as pq

    from genoattn import transcripts as tx
    from genoattn.cli_jobs import run_level
    from genoattn.config import load_config
    from genoattn.effects.saturation import demo_variants, write_sites_vcf
    from genoattn.io.annotation.parse import parse_annotation
    from genoattn.runtime import setup_logging

    setup_logging(None)
    ref = load_config(a.config)["references"][a.reference]
    ann, _ = parse_annotation(ref["annotation"])
    model = tx.build_transcripts(ann, select="all", contigs=a.contigs)
    fa = pysam.FastaFile(ref["fasta"])
    letters = {c: (lambda s, e, c=c: fa.fetch(c, s, e).upper()) for c in fa.references}
    lengths = dict(zip(fa.references, fa.lengths))
    variants = demo_variants([t for t in model.transcripts if t.contig in a.contigs], letters, lengths, a.genes)
    with tempfile.TemporaryDirectory() as tmp:
        vcf = str(Path(tmp) / "variants.vcf.gz")
        write_sites_vcf(variants, vcf, lengths)
        out = str(Path(tmp) / "effects" / "variants.parquet")
        t0 = time.time()
        run_level("effects", a.config, out=out, threads=a.threads, reference=a.reference, vcf=vcf)
        wall = time.time() - t0
        meta = json.loads(pq.read_schema(out).metadata[b"genoattn_effects"])
        table = pd.read_parquet(out)
    result = {"config": a.config, "contigs": a.contigs, "variants": int(len(table)),
              "kinds": table["kind"].value_counts().to_dict(), "threads": a.threads, "job_seconds": meta["seconds"],
              "wall_seconds_with_loading": round(wall, 1), "variants_per_s": round(len(table) / meta["seconds"], 2),
              "seconds_by_part": meta["seconds_by_part"], "llr": meta["llr"], "device": meta["device"]}
    print(json.dumps(result, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
