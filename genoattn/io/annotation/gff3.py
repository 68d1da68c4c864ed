"""GFF3 rows -> the intermediate model: the ID/Parent hierarchy, with synthesized genes and
transcripts where a level is missing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from genoattn.io.annotation.errors import _err
from genoattn.io.annotation.features import (_CANONICAL_KEYS, _FALSY, _GENE_PREFIXES, _GENE_TYPES, _GFF_KEEP,
                                             _KEY_START, _LEAF_KIND, _PHASES, _STRANDS, _TX_PREFIXES, _norm_tag)
from genoattn.io.annotation.model import _Gene, _Stats, _Tx
from genoattn.io.annotation.reading import _coords, _open_text, _read_line, _split_columns


def _gff_attrs(text: str):
    out = {}
    tags = None
    for part in text.split(";"):
        key, sep, val = part.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key in _GFF_KEEP:
            if key == "Parent" or key == "tag":
                vals = [unquote(v) if "%" in v else v for v in val.strip().split(",")]
                if key == "tag":
                    tags = (tags or []) + [_norm_tag(v) for v in vals if v.strip()]
                else:
                    out[key] = tuple(v for v in vals if v)
            elif key not in out:
                val = val.strip()
                out[key] = unquote(val) if "%" in val else val
        else:
            canon = _CANONICAL_KEYS.get(key.lower())
            if canon and val.strip().lower() not in _FALSY:
                tags = (tags or []) + [canon]
    return out, tags


_GFF_PARENT = re.compile(r"Parent=([^;]*)")


def _gff_parents(attr: str) -> tuple:
    m = _GFF_PARENT.search(attr)
    while m is not None and m.start() and attr[m.start() - 1] not in _KEY_START:
        m = _GFF_PARENT.search(attr, m.end())
    if m is None:
        return ()
    return tuple(unquote(v) if "%" in v else v for v in m.group(1).strip().split(",") if v)


def _is_leaf_id(path: Path, rid: str) -> bool:
    """Whether an exon/CDS row has ID ``rid`` (only read on the error path)."""
    with _open_text(path) as fh:
        for line in fh:
            cols = line.split("\t")
            if len(cols) == 9 and cols[2] in _LEAF_KIND:
                a, _ = _gff_attrs(cols[8])
                if a.get("ID") == rid:
                    return True
    return False


def _strip_prefix(raw: str, prefixes) -> str:
    for p in prefixes:
        if raw.startswith(p) and len(raw) > len(p):
            return raw[len(p):]
    return raw


def _is_transcript_type(ftype: str) -> bool:
    low = ftype.lower()
    return (low.endswith("rna") or "transcript" in low) and not low.endswith("gene")


def _parse_gff3(fh, path: Path, st: _Stats):
    # raw ID -> [type, seqid, start, end, strand, line, parents, attrs, tags]
    ids: dict[str, list] = {}
    leaves = []  # [kind, seqid, start, end, strand, phase, line, parents, tags]
    max_end = st.max_end
    for lineno, line in enumerate(fh, 1):
        if line[:1] == "#":
            if line.startswith("##FASTA"):
                break
            continue
        if not line.strip():
            continue
        if line[:1] == ">":
            break  # FASTA section without the ##FASTA directive
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) != 9:
            if line.startswith(("track ", "browser ")):  # UCSC header lines
                continue
            cols = _split_columns(line, path, lineno)
        seqid, _src, ftype, s, e, _score, strand, phase, attr = cols
        try:
            start = int(s) - 1
            end = int(e)
        except ValueError:
            start = end = -1
        if start < 0 or start >= end:
            start, end = _coords(s, e, line, path, lineno)  # raises with the reason
        if strand not in _STRANDS:
            raise _err(path, lineno, line, f"strand {strand!r} is not one of + - . ?",
                       "column 7 must be '+', '-' or '.' (unknown)")
        if "%" in seqid:
            seqid = unquote(seqid)
        m = max_end.get(seqid)
        if m is None or end > m[0]:
            max_end[seqid] = (end, lineno)
        kind = _LEAF_KIND.get(ftype)
        if kind is not None:
            if "tag" in attr or "anonical" in attr or "elect" in attr:
                a, tags = _gff_attrs(attr)
                parents = a.get("Parent")
            else:  # fast path: a leaf needs only its Parent(s)
                tags = None
                parents = _gff_parents(attr)
            if kind == "CDS":
                if phase not in _PHASES:
                    raise _err(path, lineno, line, f"CDS phase {phase!r} is not 0, 1, 2 or '.'",
                               "column 8 of a CDS row is the number of bases to skip to the first codon")
                p = _PHASES[phase]
            else:
                p = None
            if not parents:
                if kind in ("exon", "CDS"):
                    raise _err(path, lineno, line, f"{ftype} row without a Parent attribute",
                               "add Parent=<transcript or gene ID> so the feature belongs to a transcript")
                continue
            leaves.append([kind, seqid, start, end, strand, p, lineno, parents, tags])
            continue
        a, tags = _gff_attrs(attr)
        rid = a.get("ID")
        if rid is None:
            continue
        rec = ids.get(rid)
        if rec is None:
            ids[rid] = [ftype, seqid, start, end, strand, lineno, a.get("Parent", ()), a, tags]
        elif rec[1] == seqid:  # multi-row feature: extend
            rec[2], rec[3] = min(rec[2], start), max(rec[3], end)
    return _assemble_gff3(ids, leaves, path, st)


def _assemble_gff3(ids, leaves, path: Path, st: _Stats):
    def check_parent(pid, lineno, what):
        if pid not in ids:
            line = _read_line(path, lineno)
            if _is_leaf_id(path, pid):
                raise _err(path, lineno, line, f"{what} Parent {pid!r} is an exon/CDS, not a transcript or gene",
                           "point Parent at the ID of the transcript (mRNA, ...) or gene")
            raise _err(path, lineno, line, f"Parent {pid!r} never appears as an ID in the file",
                       f"add the parent feature (a row with ID={pid}), correct the Parent value, or use the complete "
                       f"annotation file (a subset cut with grep/awk can drop parent rows)")

    root_cache: dict[str, str] = {}

    def root(rid: str, lineno: int) -> str:
        r = root_cache.get(rid)
        if r is not None:
            return r
        seen = [rid]
        cur = rid
        while ids[cur][6]:
            nxt = ids[cur][6][0]
            check_parent(nxt, ids[cur][5], ids[cur][0])
            if nxt in seen:
                raise _err(path, ids[cur][5], _read_line(path, ids[cur][5]),
                           f"the Parent chain of {rid!r} is a cycle",
                           "Fix: correct the ID/Parent attributes so that genes are at the top")
            seen.append(nxt)
            cur = nxt
        for s in seen:
            root_cache[s] = cur
        return cur

    genes: dict[str, _Gene] = {}
    txs: dict[tuple, _Tx] = {}

    def gene_for(grid: str) -> _Gene:
        g = genes.get(grid)
        if g is None:
            ftype, seqid, start, end, strand, line, _par, a, tags = ids[grid]
            name = a.get("gene_name") or a.get("Name") or a.get("gene")
            biotype = a.get("gene_biotype") or a.get("gene_type") or a.get("biotype") or (
                ftype if ftype != "gene" else None)
            gid = a.get("gene_id") or _strip_prefix(grid, _GENE_PREFIXES)
            g = genes[grid] = _Gene(gid, seqid, start, end, strand, line, name, biotype, tags)
        return g

    def tx_for(grid: str, trid: str | None, synth_gene: bool = False) -> _Tx:
        key = (grid, trid)
        t = txs.get(key)
        if t is not None:
            return t
        if synth_gene:  # top-level transcript: a gene from the transcript's row
            ftype, seqid, start, end, strand, line, _par, a, tags = ids[trid]
            g = genes.get(("synth", trid))
            if g is None:
                gid = a.get("gene_id") or _strip_prefix(trid, _TX_PREFIXES)
                g = genes[("synth", trid)] = _Gene(gid, seqid, None, None, strand, line,
                                                   a.get("gene_name") or a.get("gene"),
                                                   a.get("gene_biotype") or a.get("gene_type"), [])
                st.genes_synthesized += 1
        else:
            g = gene_for(grid)
        if trid is None:  # leaf directly under a gene
            t = _Tx(g.gene_id, g.seqid, None, None, g.strand, None, None, None)
            st.transcripts_synthesized += 1
        else:
            ftype, seqid, start, end, strand, line, _par, a, tags = ids[trid]
            tid = a.get("transcript_id") or _strip_prefix(trid, _TX_PREFIXES)
            biotype = a.get("transcript_biotype") or a.get("transcript_type") or a.get("biotype") or ftype
            t = _Tx(tid, seqid, start, end, strand, line, biotype, tags)
            if g.name is None:
                g.name = a.get("gene_name") or a.get("gene")
        txs[key] = t
        g.txs.append(t)
        return t

    for leaf in leaves:
        kind, seqid, start, end, strand, p, lineno, parents, tags = leaf
        for pid in parents:
            check_parent(pid, lineno, kind)
            prec = ids[pid]
            if prec[6]:  # parent has parents: a transcript under gene(s)
                targets = []
                for gp in prec[6]:
                    check_parent(gp, prec[5], prec[0])
                    targets.append(tx_for(root(gp, prec[5]), pid))
            elif _is_transcript_type(prec[0]):
                targets = [tx_for(None, pid, synth_gene=True)]
            else:
                targets = [tx_for(pid, None)]
            for t in targets:
                t.leaves.append([kind, seqid, start, end, strand, p, lineno])
                if tags:
                    for tag in tags:
                        t.tags[tag] = None

    # features that are parents of other ID'd features (intermediates such as primary_transcript)
    has_children = set()
    for rid, rec in ids.items():
        for pid in rec[6]:
            has_children.add(pid)

    def gene_like(rid):
        return rid in genes or ids[rid][0] in _GENE_TYPES or ids[rid][0].endswith("_gene")

    for rid, rec in ids.items():
        ftype, parents = rec[0], rec[6]
        if not parents:
            if ftype in _GENE_TYPES or ftype.endswith("_gene"):
                gene_for(rid)
            continue
        if rid in has_children:
            continue  # an intermediate (primary_transcript) or a parent of other features
        for gp in parents:
            check_parent(gp, rec[5], ftype)
            top = root(gp, rec[5])
            # a transcript without exon/CDS rows: a transcript-like child of a gene (not an intron, ...)
            if (top, rid) not in txs and gene_like(top) and (_is_transcript_type(ftype) or not ids[gp][6]):
                tx_for(top, rid)
    return genes
