"""Annotation parsing speed: the real yeast GTF/GFF3, and a synthetic GENCODE-like GTF to extrapolate
to a human annotation (~3.4M rows, ~13.5 rows per transcript).

The synthetic file is derived from the real yeast R64 GTF, for timing only (its exon structure is not
biology): GENCODE-style attributes are added to every row (gene_type, transcript_type, level, havana
ids, three `tag`s; ~350 characters per line like GENCODE v4x), each exon row is cut into 6 abutting
pieces and each CDS row into 4 (frame '.', so phases are computed), start_codon/stop_codon rows are
added, giving ~14 rows per transcript; the whole is replicated ``--copies`` times under renamed
gene/transcript ids.

    python benchmarks/annotation.py --copies 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import run_meta
from genoattn.io.annotation import parse_annotation

ROOT = Path(__file__).resolve().parents[1]
GTF = ROOT / "data/demo/yeast_R64/S288C_R64-2-1.gtf.gz"
GFF = ROOT / "data/demo/yeast_R64/S288C_R64-2-1.gff3.gz"

EXTRA = ('gene_type "protein_coding"; transcript_type "protein_coding"; transcript_name "{t}-201"; level 2; '
         'transcript_support_level "1"; havana_gene "OTTHUMG00000{c:06d}.2"; havana_transcript "OTTHUMT00000{c:06d}.1"; '
         'tag "basic"; tag "Ensembl_canonical"; tag "MANE_Select"; hgnc_id "HGNC:{c}"; protein_id "ENSP000004{c:05d}.1";')


def _pieces(start: int, end: int, k: int) -> list[tuple[int, int]]:
    n = end - start + 1
    if n < k:
        return [(start, end)]
    cuts = [start + (n * i) // k for i in range(k + 1)]
    return [(cuts[i], cuts[i + 1] - 1) for i in range(k)]


def synthetic_gencode_like(out: Path, copies: int) -> int:
    with gzip.open(GTF, "rt") as fh:
        lines = [l.rstrip("\n").split("\t") for l in fh if not l.startswith("#")]
    n = 0
    with open(out, "w") as dst:
        for c in range(copies):
            for cols in lines:
                attr = cols[8].replace('gene_id "', f'gene_id "C{c}_').replace('transcript_id "', f'transcript_id "C{c}_')
                attr = attr + " " + EXTRA.format(t=cols[0], c=c)
                s, e = int(cols[3]), int(cols[4])
                rows = [(cols[2], s, e, cols[7])]
                if cols[2] == "exon":
                    rows = [("exon", a, b, ".") for a, b in _pieces(s, e, 6)]
                elif cols[2] == "CDS":
                    rows = [("CDS", a, b, ".") for a, b in _pieces(s, e, 4)]
                    if e - s >= 6:
                        first, last = (s, s + 2), (e - 2, e)
                        if cols[6] == "-":
                            first, last = last, first
                        rows += [("start_codon", *first, "0"), ("stop_codon", *last, "0")]
                for ftype, a, b, ph in rows:
                    dst.write("\t".join([cols[0], cols[1], ftype, str(a), str(b), cols[5], cols[6], ph, attr]) + "\n")
                    n += 1
    return n


def timed(path: Path, repeat: int = 3) -> tuple[float, float, int]:
    best_wall = best_cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        df, _ = parse_annotation(path)
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
        rows = len(df)
    return best_wall, best_cpu, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--json", default=None, help="also write the results here (benchmarks/results/annotation_cpu.json)")
    args = ap.parse_args()
    begun = run_meta.begin()
    out = {"real": [], "copies": args.copies}
    for path in (GTF, GFF):  # the real files first (their peak RSS is the baseline below)
        with gzip.open(path, "rt") as fh:
            n_in = sum(1 for l in fh if not l.startswith("#"))
        wall, cpu, rows = timed(path)
        print(f"{path.name}: {n_in:,} input rows -> {rows:,} table rows, best of 3: {wall:.2f} s wall, "
              f"{cpu:.2f} s CPU ({1e6 * cpu / n_in:.1f} us/input row)")
        out["real"].append({"file": path.name, "input_rows": n_in, "table_rows": rows, "wall_s": round(wall, 3),
                            "cpu_s": round(cpu, 3)})
    with tempfile.TemporaryDirectory() as tmp:
        syn = Path(tmp) / "synthetic_gencode_like.gtf"
        n_in = synthetic_gencode_like(syn, args.copies)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        wall, cpu, rows = timed(syn, repeat=1)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        per_row = cpu / n_in
        print(f"synthetic GENCODE-like GTF (yeast x{args.copies}, exons cut in pieces, {syn.stat().st_size / 1e6:.0f} MB): "
              f"{n_in:,} rows, {wall:.2f} s wall, {cpu:.2f} s CPU ({1e6 * per_row:.1f} us/row) -> "
              f"~{3.4e6 * per_row:.0f} s CPU extrapolated for a 3.4M-row human GENCODE GTF")
        print(f"peak RSS grew by {grown:.0f} MiB while parsing it ({grown * 2**20 / n_in:.0f} B/row) -> "
              f"~{grown * 3.4e6 / n_in / 1024:.1f} GiB extrapolated for 3.4M rows")
        out["synthetic"] = {"input_rows": n_in, "table_rows": rows, "bytes": syn.stat().st_size,
                            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_growth_mib": round(grown, 1)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB")
    out["meta"] = run_meta.meta(begun, threads=1 if os.environ.get("OMP_NUM_THREADS") == "1" else None)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
