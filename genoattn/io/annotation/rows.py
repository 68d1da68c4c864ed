"""The intermediate model -> table rows: strands, stop codons merged into CDS, computed CDS phases,
derived exons and extents."""

from __future__ import annotations

from typing import Mapping

from genoattn.io.annotation.model import _Gene, _Stats, _Tx


def _merge_intervals(ivs):
    ivs = sorted(ivs)
    out = [list(ivs[0])]
    for s, e in ivs[1:]:
        if s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _finish_transcript(t: _Tx, g: _Gene, fmt: str, merge_stop: bool, st: _Stats):
    leaves = t.leaves
    exons = [lf for lf in leaves if lf[0] == "exon"]
    cds = [lf for lf in leaves if lf[0] == "CDS"]
    strand = t.strand if t.strand in ("+", "-") else None
    if strand is None:
        for lf in leaves:
            if lf[4] in ("+", "-"):
                strand = lf[4]
                break
        else:
            strand = g.strand if g.strand in ("+", "-") else None
    seqid = t.seqid or (leaves[0][1] if leaves else g.seqid)
    if merge_stop and cds and fmt == "gtf":
        for lf in leaves:
            if lf[0] != "stop_codon":
                continue
            s, e = lf[2], lf[3]
            for c in cds:
                if c[2] <= e and c[3] >= s:
                    if s < c[2] or e > c[3]:
                        c[2], c[3] = min(c[2], s), max(c[3], e)
                        st.stop_codons_merged += 1
                    break
            else:
                new = ["CDS", lf[1], s, e, lf[4], None, lf[6]]
                cds.append(new)
                st.cds_added_from_stop += 1
    if cds and any(c[5] is None for c in cds):
        ordered = sorted(cds, key=lambda c: c[2], reverse=(strand == "-"))
        cum = 0
        for c in ordered:
            if c[5] is None:
                c[5] = (3 - cum % 3) % 3
                st.phases_computed += 1
            cum += c[3] - c[2]
    if not exons:
        parts = [(lf[2], lf[3]) for lf in leaves if lf[0] != "exon"] + [(c[2], c[3]) for c in cds]
        if parts:
            line = min(lf[6] for lf in leaves) if leaves else t.line
            exons = [["exon", seqid, s, e, strand, None, line] for s, e in _merge_intervals(parts)]
        elif t.start is not None:
            exons = [["exon", seqid, t.start, t.end, strand, None, t.line]]
        st.exons_derived += len(exons)
    if t.start is None:
        span = exons or cds
        t.start = min(x[2] for x in span)
        t.end = max(x[3] for x in span)
        t.line = min(x[6] for x in span)
    return strand, seqid, exons, cds


def _rows(genes: Mapping, fmt: str, merge_stop: bool, st: _Stats) -> list[tuple]:
    rows = []
    append = rows.append
    for g in genes.values():
        gid, gname, gbio = g.gene_id, g.name, g.biotype
        gtags = ",".join(dict.fromkeys(g.tags))
        finished = []
        for t in g.txs:
            finished.append((t,) + _finish_transcript(t, g, fmt, merge_stop, st))
        if g.start is None:
            if not finished:
                continue
            g.start = min(f[0].start for f in finished)
            g.end = max(f[0].end for f in finished)
            g.line = min(f[0].line for f in finished)
            g.seqid = finished[0][2]
        gstrand = g.strand if g.strand in ("+", "-") else next(
            (f[1] for f in finished if f[1] is not None), None)
        if gstrand is None:
            st.dropped_unstranded += 1
        else:
            append(("gene", g.seqid, g.start, g.end, gstrand, -1, gid, gname, gbio, None, None, gtags, g.line,
                    g.start, -1, 0))
        for t, strand, seqid, exons, cds in finished:
            t.leaves = None
            if strand is None:
                st.dropped_unstranded += 1 + len(exons) + len(cds)
                continue
            tid, tbio = t.transcript_id, t.biotype
            ttags = ",".join(t.tags)
            ts = t.start
            append(("transcript", seqid, t.start, t.end, strand, -1, gid, gname, gbio, tid, tbio, ttags, t.line,
                    g.start, ts, 1))
            for x in exons:
                append(("exon", x[1], x[2], x[3], strand, -1, gid, gname, gbio, tid, tbio, ttags, x[6],
                        g.start, ts, 2))
            for x in cds:
                append(("CDS", x[1], x[2], x[3], strand, x[5], gid, gname, gbio, tid, tbio, ttags, x[6],
                        g.start, ts, 2))
    return rows
