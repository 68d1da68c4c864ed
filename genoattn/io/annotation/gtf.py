"""GTF (GTF2.2 / Ensembl / GENCODE / NCBI / SGD) rows -> the intermediate model: grouped by the
gene_id / transcript_id attributes."""

from __future__ import annotations

import re
from pathlib import Path

from genoattn.io.annotation.errors import _err
from genoattn.io.annotation.features import (_CANONICAL_KEYS, _FALSY, _GTF_KIND, _KEY_START, _PHASES, _STRANDS,
                                             _norm_tag)
from genoattn.io.annotation.model import _Gene, _Stats, _Tx
from genoattn.io.annotation.reading import _coords, _split_columns

_GTF_ATTR = re.compile(r'([A-Za-z_][\w.\-]*)\s+(?:"([^"]*)"|([^;\s"]+))')

# literal-prefix patterns (fast in `re`); a match counts only at a key boundary (not locus_tag)
_GTF_TAG = re.compile(r'tag\s+"([^"]*)"')
_GTF_TID = re.compile(r'transcript_id\s+"([^"]*)"')


def _gtf_tid(attr: str) -> str | None:
    m = _GTF_TID.search(attr)
    while m is not None and m.start() and attr[m.start() - 1] not in _KEY_START:
        m = _GTF_TID.search(attr, m.end())
    return m.group(1) if m is not None else None


def _gtf_tag_values(attr: str) -> list[str]:
    return [m.group(1) for m in _GTF_TAG.finditer(attr) if not m.start() or attr[m.start() - 1] in _KEY_START]


# canonical markers written as their own attribute (`canonical "1";`), not as a tag value
_GTF_CANON = re.compile(
    r"(?:^|;)\s*(?:is_)?(?:canonical|Ensembl_canonical|MANE_Select|RefSeq_Select|MANE_Plus_Clinical)\s", re.IGNORECASE)
_CANON_ATTRS = {k for base in _CANONICAL_KEYS for k in
                (base, base.upper(), base.capitalize(), "Ensembl_canonical", "MANE_Select", "RefSeq_Select",
                 "MANE_Plus_Clinical")}


def _gtf_tags(text: str, a: dict | None = None):
    tags = [_norm_tag(v) for v in _gtf_tag_values(text)] if "tag" in text else []
    if a is not None:
        for key in _CANON_ATTRS.intersection(a):
            if a[key].strip().lower() not in _FALSY:
                tags.append(_CANONICAL_KEYS[key.lower()])
    return tags


def _gtf_attrs(text: str):
    """The attributes of a GTF row (first value of each key) and its tags."""
    a = {}
    for key, qval, uval in _GTF_ATTR.findall(text):
        if key not in a:
            a[key] = qval or uval
    return a, _gtf_tags(text, a)


def _parse_gtf(fh, path: Path, st: _Stats):
    genes: dict[str, _Gene] = {}
    txs: dict[str, tuple[str, _Tx]] = {}  # tid -> (gene key, tx)
    gfb: dict[str, list] = {}  # gene_id -> [name, biotype] from non-gene rows
    max_end = st.max_end
    kinds = _GTF_KIND
    for lineno, line in enumerate(fh, 1):
        if line[:1] == "#" or not line.strip():
            continue
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
        m = max_end.get(seqid)
        if m is None or end > m[0]:
            max_end[seqid] = (end, lineno)
        kind = kinds.get(ftype)
        if kind is None:
            continue
        if kind != "gene" and kind != "transcript":
            # fast path: a further exon/CDS/UTR row of a transcript seen before needs only its tags
            entry = txs.get(_gtf_tid(attr))
            if entry is not None:
                t = entry[1]
                if kind == "CDS":
                    if phase not in _PHASES:
                        raise _err(path, lineno, line, f"CDS phase {phase!r} is not 0, 1, 2 or '.'",
                                   "column 8 of a CDS row is the number of bases to skip to the first codon")
                    p = _PHASES[phase]
                else:
                    p = None
                t.leaves.append([kind, seqid, start, end, strand, p, lineno])
                i = attr.find('tag "')
                if i >= 0:
                    # GENCODE/Ensembl repeat the transcript's tags on every row: parse a tag block once
                    j = attr.rfind('tag "')
                    block = attr[i:attr.find('"', j + 5)]
                    if block != t.tag_block:
                        t.tag_block = block
                        ttags = t.tags
                        for v in _gtf_tag_values(attr):
                            if v not in ttags:
                                ttags[_norm_tag(v)] = None
                if ("anonical " in attr or "elect " in attr or "linical " in attr) and _GTF_CANON.search(attr):
                    for tag in _gtf_tags("", _gtf_attrs(attr)[0]):
                        t.tags[tag] = None
                continue
        a, tags = _gtf_attrs(attr)
        gid = a.get("gene_id")
        if not gid:
            raise _err(path, lineno, line, f"{ftype} row without a gene_id attribute",
                       'every GTF gene/transcript/exon/CDS row needs `gene_id "..."; transcript_id "...";` '
                       "(or use the GFF3 file of the same release)")
        tid = a.get("transcript_id") or None
        if kind == "gene":
            g = genes.get(gid)
            name = a.get("gene_name") or a.get("gene") or a.get("Name")
            biotype = a.get("gene_biotype") or a.get("gene_type") or a.get("biotype")
            if g is None:
                genes[gid] = _Gene(gid, seqid, start, end, strand, lineno, name, biotype, tags)
            elif g.start is None:  # created from an earlier transcript/exon row
                g.seqid, g.start, g.end, g.strand, g.line = seqid, start, end, strand, lineno
                g.name, g.biotype, g.tags = name, biotype, tags or []
            elif g.seqid == seqid:  # repeated gene row: extend
                g.start, g.end = min(g.start, start), max(g.end, end)
            continue
        if gid not in gfb:
            gfb[gid] = [a.get("gene_name") or a.get("gene"), a.get("gene_biotype") or a.get("gene_type")]
        if tid is None:
            tid = gid
            st.transcripts_synthesized += tid not in txs
        entry = txs.get(tid)
        if entry is None:
            if gid not in genes:
                genes[gid] = _Gene(gid)
            t = _Tx(tid)
            txs[tid] = (gid, t)
            genes[gid].txs.append(t)
        else:
            t = entry[1]
        if kind == "transcript":
            if t.start is None:
                t.seqid, t.start, t.end, t.strand, t.line = seqid, start, end, strand, lineno
            else:
                t.start, t.end = min(t.start, start), max(t.end, end)
            t.biotype = a.get("transcript_biotype") or a.get("transcript_type") or t.biotype
        else:
            if kind == "CDS":
                if phase not in _PHASES:
                    raise _err(path, lineno, line, f"CDS phase {phase!r} is not 0, 1, 2 or '.'",
                               "column 8 of a CDS row is the number of bases to skip to the first codon")
                p = _PHASES[phase]
            else:
                p = None
            t.leaves.append([kind, seqid, start, end, strand, p, lineno])
            if t.biotype is None:
                t.biotype = a.get("transcript_biotype") or a.get("transcript_type")
        if tags:
            for tag in tags:
                t.tags[tag] = None
    for gid, g in genes.items():
        fb = gfb.get(gid)
        if fb is not None:
            g.name = g.name or fb[0]
            g.biotype = g.biotype or fb[1]
        if g.start is None:
            st.genes_synthesized += 1
    return genes
