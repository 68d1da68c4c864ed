"""Every possible SNV of some genes (in-silico saturation mutagenesis), as a table or a sites-only VCF.

Used by the benchmarks (bcftools csq concordance, LLR by consequence class) and the tests; the
variants are made from the reference, never invented data: each position of the chosen transcripts'
exons (and, with ``intron_flank``, of the intron bases that far from an exon) gets the three other bases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pick_genes(transcripts, n: int, seed: int = 0, with_introns: int = 0) -> list:
    """``n`` coding transcripts, one per gene, drawn with a seed; at least ``with_introns`` of them spliced
    (all the spliced ones when there are fewer)."""
    rng = np.random.default_rng(seed)
    coding = [t for t in transcripts if t.coding]
    seen, unique = set(), []
    for t in coding:
        if t.gene_id not in seen:
            seen.add(t.gene_id)
            unique.append(t)
    spliced = [t for t in unique if len(t.exons) > 1]
    single = [t for t in unique if len(t.exons) == 1]
    k = min(with_introns, len(spliced), n)
    pick = [spliced[i] for i in rng.choice(len(spliced), size=k, replace=False)] if k else []
    rest = [t for t in spliced + single if t not in pick]
    m = min(n - k, len(rest))
    pick += [rest[i] for i in rng.choice(len(rest), size=m, replace=False)] if m else []
    return sorted(pick, key=lambda t: (t.contig, t.start))


def every_snv(transcripts, letters: dict, intron_flank: int = 0) -> pd.DataFrame:
    """Columns contig, pos (1-based), ref, alt of every SNV of the transcripts' exons (+ ``intron_flank``
    intron bases next to each exon); ``letters``: contig -> (start, end) -> reference letters."""
    rows = []
    for t in transcripts:
        spans = []
        asc = t.exons[np.argsort(t.exons[:, 0])]
        for i, (s, e) in enumerate(asc):
            lo = s - (intron_flank if i > 0 else 0)
            hi = e + (intron_flank if i < len(asc) - 1 else 0)
            spans.append((int(lo), int(hi)))
        positions = np.unique(np.concatenate([np.arange(a, b) for a, b in spans]))
        seq = letters[t.contig](int(positions.min()), int(positions.max()) + 1)
        for p in positions:
            ref = seq[p - positions.min()]
            if ref not in "ACGT":
                continue
            rows += [(t.contig, int(p) + 1, ref, alt) for alt in "ACGT" if alt != ref]
    df = pd.DataFrame(rows, columns=["contig", "pos", "ref", "alt"]).drop_duplicates()
    return df.sort_values(["contig", "pos", "alt"], kind="stable").reset_index(drop=True)


def write_sites_vcf(df: pd.DataFrame, path: str, contig_lengths: dict, source: str = "genoattn saturation") -> None:
    """A sites-only VCF (plain text, or bgzip when ``path`` ends in .gz) of the table's rows, sorted by the
    order of ``contig_lengths``; columns contig, pos, ref, alt (+ optional id)."""
    order = {c: i for i, c in enumerate(contig_lengths)}
    df = df.assign(_o=df["contig"].map(order)).sort_values(["_o", "pos", "alt"], kind="stable")
    lines = ["##fileformat=VCFv4.2", f"##source={source}"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contig_lengths.items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    ids = df["id"] if "id" in df else ["."] * len(df)
    lines += [f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t." for c, p, i, r, a in
              zip(df["contig"], df["pos"], ids, df["ref"], df["alt"])]
    text = "\n".join(lines) + "\n"
    if path.endswith(".gz"):
        import pysam

        plain = path[:-3]
        with open(plain, "w") as fh:
            fh.write(text)
        pysam.tabix_compress(plain, path, force=True)
        import os

        os.remove(plain)
    else:
        with open(path, "w") as fh:
            fh.write(text)


def demo_variants(transcripts, letters: dict, contig_lengths: dict, n_genes: int = 8, seed: int = 0) -> pd.DataFrame:
    """A small VCF's worth of variants touching every consequence class: in ``n_genes`` coding genes (at least
    two spliced, both strands), every SNV of the first, a middle and the last codon and of the splice sites
    (3 exonic + 8 intronic bases at each exon-intron boundary); per gene a 1-bp deletion and a 3-bp insertion
    in the CDS; and SNVs and a deletion between genes. Every REF comes from the reference."""
    rng = np.random.default_rng(seed)
    genes = pick_genes(transcripts, n_genes, seed, with_introns=2)
    rows = []

    def snvs(contig, positions):
        for p in positions:
            ref = letters[contig](int(p), int(p) + 1)
            rows.extend((contig, int(p) + 1, ref, alt) for alt in "ACGT" if alt != ref and ref in "ACGT")

    for t in genes:
        cds = t.cds_positions()
        k = (len(cds) - t.first_phase) // 3
        mid = t.first_phase + 3 * (k // 2)
        snvs(t.contig, np.concatenate([cds[t.first_phase:t.first_phase + 3], cds[mid:mid + 3], cds[-3:]]))
        asc = t.exons[np.argsort(t.exons[:, 0])]
        for (_, e1), (s2, _) in zip(asc[:-1], asc[1:]):
            snvs(t.contig, np.r_[e1 - 3:e1 + 8, s2 - 8:s2 + 3])
        p = int(cds[mid + 7])          # a 1-bp deletion (VCF: the base before it as padding)
        lo = p - 1
        ref = letters[t.contig](lo, lo + 2)
        rows.append((t.contig, lo + 1, ref, ref[0]))
        p = int(cds[mid + 13])         # a 3-bp insertion after base p
        base = letters[t.contig](p, p + 1)
        ins = "".join(rng.choice(list("ACGT"), 3))
        rows.append((t.contig, p + 1, base, base + ins))
    # between genes: far from every transcript of the chosen genes' contigs
    for contig in sorted({t.contig for t in genes})[:2]:
        spans = sorted((t.start, t.end) for t in transcripts if t.contig == contig)
        gaps = [(e, s2) for (_, e), (s2, _) in zip(spans[:-1], spans[1:]) if s2 - e > 400]
        if gaps:
            a, b = gaps[len(gaps) // 2]
            snvs(contig, [a + 150, a + 200])
            ref = letters[contig](a + 250, a + 253)
            rows.append((contig, a + 251, ref, ref[0]))
    df = pd.DataFrame(rows, columns=["contig", "pos", "ref", "alt"]).drop_duplicates()
    order = {c: i for i, c in enumerate(contig_lengths)}
    return df.assign(_o=df["contig"].map(order)).sort_values(["_o", "pos", "alt"]).drop(columns="_o") \
        .reset_index(drop=True)


def main(argv=None) -> None:
    """``python -m genoattn.effects.saturation --fasta F --annotation A --contigs chrXI chrXIII chrXV --out V``:
    the demo's variant VCF (:func:`demo_variants`)."""
    import argparse

    import pysam

    from genoattn import transcripts as tx
    from genoattn.io.annotation.parse import parse_annotation

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--fasta", required=True)
    p.add_argument("--annotation", required=True, help="GTF or GFF3")
    p.add_argument("--contigs", nargs="+", required=True)
    p.add_argument("--genes", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="VCF to write (.vcf.gz: bgzip)")
    a = p.parse_args(argv)
    ann, _ = parse_annotation(a.annotation)
    model = tx.build_transcripts(ann, select="all", contigs=a.contigs)
    fa = pysam.FastaFile(a.fasta)
    letters = {c: (lambda s, e, c=c: fa.fetch(c, s, e).upper()) for c in fa.references}
    lengths = dict(zip(fa.references, fa.lengths))
    df = demo_variants([t for t in model.transcripts if t.contig in a.contigs], letters, lengths, a.genes, a.seed)
    write_sites_vcf(df, a.out, lengths, source=f"genoattn demo_variants n_genes={a.genes} seed={a.seed} "
                                               f"on {' '.join(a.contigs)}")
    print(f"{a.out}: {len(df)} variants")


if __name__ == "__main__":
    main()
