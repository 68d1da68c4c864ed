"""Consequences of genoattn against ``bcftools csq`` on every possible SNV of 200 yeast genes.

    python benchmarks/effects_csq.py --fasta data/demo/yeast_R64/S288C_R64-2-1.fa.gz \
        --gff3 data/demo/yeast_R64/S288C_R64-2-1.gff3.gz --genes 200 --json benchmarks/results/effects_csq.json

Both tools get the same FASTA and GFF3 and the same sites-only VCF: every SNV of the exons and of the 10
intron bases next to each exon of ``--genes`` protein-coding genes drawn with a seed (both strands, at least
half of them spliced when the genome has that many). bcftools runs as ``bcftools csq -l`` (each record on
its own: a sites-only VCF has no haplotypes, and without ``-l`` bcftools joins SNVs of one codon into one
change). Per SNV the consequence sets (SO terms) and the protein change of the gene's transcript are
compared; every difference is listed with its kind. A coding SNV is one whose base lies in a CDS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np


def parse_bcsq(info: str) -> dict[str, tuple[set[str], str]]:
    """transcript id -> (consequence terms, protein change) of a BCSQ INFO value. bcftools writes the splice
    and the coding consequence of one transcript as two entries (merged here), and an intron entry with the
    gene but no transcript id (kept under ``gene:<name>``)."""
    out: dict[str, tuple[set[str], str]] = {}
    for item in info.split(","):
        f = item.split("|")
        if len(f) < 3 or item.startswith("@"):
            continue
        key = f[2] or f"gene:{f[1]}"
        terms, protein = out.get(key, (set(), ""))
        out[key] = (terms | set(f[0].lstrip("*").split("&")), protein or (f[5] if len(f) > 5 else ""))
    return out


def explain(t, key, mine, theirs) -> str:
    """The known reason for a difference (see RESULTS.md), or 'UNEXPLAINED'."""
    pos0 = key[1] - 1
    first_cds = t.cds[0]
    if len(t.cds) > 1 and first_cds[1] - first_cds[0] < 3 and pos0 in set(t.cds_positions()[:3].tolist()):
        return "start codon split by an intron: bcftools calls the bases after the intron missense 1M>1x"
    if mine and theirs and mine[0] == theirs[0] and "start_lost" in mine[0] and not mine[1]:
        return "start_lost: bcftools prints the protein change when the start codon is near an intron, genoattn never"
    if len(t.cds) > len(t.exons) or any((np.asarray(t.cds_exon) == k).sum() > 1 for k in range(len(t.exons))):
        return "two CDS parts in one exon (programmed ribosomal frameshift): bcftools treats the gap as an intron"
    if theirs is None and mine and mine[0] <= {"intron", "splice_region"}:
        return "intronic base inside another gene's stop codon: bcftools prints no entry for the intron"
    return "UNEXPLAINED"


def run_bcftools(fasta: str, gff3: str, vcf: str) -> dict:
    out = subprocess.run(["bcftools", "csq", "-l", "-f", fasta, "-g", gff3, vcf], check=True,
                         capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        info = dict(x.split("=", 1) for x in f[7].split(";") if "=" in x)
        result[(f[0], int(f[1]), f[3], f[4])] = parse_bcsq(info.get("BCSQ", ""))
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fasta", required=True)
    p.add_argument("--gff3", required=True)
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--intron-flank", type=int, default=10)
    p.add_argument("--json")
    a = p.parse_args(argv)
    if not shutil.which("bcftools"):
        raise SystemExit("bcftools is not installed (Debian: apt-get install bcftools)")

    import pysam

    from genoattn import transcripts as tx
    from genoattn.effects import consequence as cq
    from genoattn.effects.saturation import every_snv, pick_genes, write_sites_vcf
    from genoattn.io.annotation.parse import parse_annotation

    t0 = time.time()
    ann, _ = parse_annotation(a.gff3)
    model = tx.build_transcripts(ann, select="all")
    fa = pysam.FastaFile(a.fasta)
    letters = {c: (lambda s, e, c=c: fa.fetch(c, s, e).upper()) for c in fa.references}
    genes = pick_genes(model.transcripts, a.genes, a.seed, with_introns=a.genes // 2)
    snvs = every_snv(genes, letters, intron_flank=a.intron_flank)
    index = {c: cq.TranscriptIndex(model.for_contig(c)) for c in fa.references}
    ours = {}
    for c, pos, ref, alt in zip(snvs["contig"], snvs["pos"], snvs["ref"], snvs["alt"]):
        cons = cq.variant_consequences(index[c].near(pos - 1, pos), pos - 1, ref, alt, letters[c])
        ours[(c, pos, ref, alt)] = {x.transcript_id: (set(x.consequence.split("&")), x.protein_change, x.gene_name)
                                    for x in cons if x.transcript_id}
    t_ours = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        vcf = str(Path(tmp) / "snvs.vcf")
        write_sites_vcf(snvs, vcf, dict(zip(fa.references, fa.lengths)))
        t1 = time.time()
        theirs = run_bcftools(a.fasta, a.gff3, vcf)
        t_bcf = time.time() - t1
    coding_tx = {t.transcript_id for t in model.transcripts if t.coding}
    gene_tx = {t.transcript_id for t in genes}
    by_id = {t.transcript_id: t for t in model.transcripts}
    gene_name = {t.transcript_id: t.gene_name for t in model.transcripts}
    cds = {t.transcript_id: set(t.cds_positions().tolist()) for t in genes}
    counts = Counter()
    differences = []
    kinds = Counter()
    for key, mine in ours.items():
        other = theirs.get(key, {})
        for tid in sorted(set(mine) | {t for t in other if not t.startswith("gene:")}):
            if tid not in gene_tx:
                continue            # a neighbouring gene's transcript: compared when that gene is drawn
            coding = tid in cds and (key[1] - 1) in cds[tid]
            counts["coding" if coding else "non_coding_part"] += 1
            m = mine[tid][:2] if tid in mine else None
            o = other.get(tid)
            intron = other.get(f"gene:{gene_name[tid]}")
            if intron:
                o = (o[0] | intron[0], o[1]) if o else intron
            if m == o:
                counts["equal_coding" if coding else "equal_non_coding_part"] += 1
                continue
            if o is None:
                kind = "bcftools reports nothing"
            elif m is None:
                kind = "genoattn reports nothing"
            elif m[0] != o[0]:
                kind = f"terms {'&'.join(sorted(m[0]))} vs {'&'.join(sorted(o[0]))}"
            else:
                kind = "protein change differs"
            kind = f"{kind}: {explain(by_id[tid], key, m, o)}"
            kinds[kind] += 1
            if len(differences) < 200:
                differences.append({"variant": f"{key[0]}:{key[1]}{key[2]}>{key[3]}", "transcript": tid,
                                    "coding": coding, "genoattn": None if m is None else ["&".join(sorted(m[0])), m[1]],
                                    "bcftools": None if o is None else ["&".join(sorted(o[0])), o[1]], "kind": kind})
    version = subprocess.run(["bcftools", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    result = {"bcftools": version, "fasta": a.fasta, "gff3": a.gff3, "genes": len(genes),
              "spliced_genes": int(sum(len(t.exons) > 1 for t in genes)),
              "minus_strand_genes": int(sum(t.strand == "-" for t in genes)), "snvs": int(len(snvs)),
              "intron_flank": a.intron_flank, "comparisons": dict(counts), "difference_kinds": dict(kinds),
              "unexplained": int(sum(n for k, n in kinds.items() if k.endswith("UNEXPLAINED"))),
              "coding_concordance": round(counts["equal_coding"] / max(counts["coding"], 1), 6),
              "seconds_genoattn": round(t_ours, 1), "seconds_bcftools": round(t_bcf, 1),
              "differences": differences, "coding_transcripts_in_annotation": len(coding_tx)}
    print(f"{len(genes)} genes ({result['spliced_genes']} spliced, {result['minus_strand_genes']} on '-'), "
          f"{len(snvs):,} SNVs; {version}")
    print(f"coding SNV x transcript: {counts['equal_coding']:,}/{counts['coding']:,} equal "
          f"({result['coding_concordance']:.4%}); non-coding parts (introns, splice sites): "
          f"{counts['equal_non_coding_part']:,}/{counts['non_coding_part']:,}")
    for kind, n in kinds.most_common():
        print(f"  {n:6,d}  {kind}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
