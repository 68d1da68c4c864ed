"""Gene annotation (GTF or GFF3) -> the annotation table, 0-based half-open, once.

Output contract (results/{reference}/annotation.parquet, read with :func:`read_annotation`)
--------------------------------------------------------------------------------------------
One row per feature, columns (in this order)::

    feature             gene | transcript | exon | CDS
    contig              reference (canonical, aliased) contig name; null when the reference lacks it
    source_contig       the contig name as written in the annotation file
    start, end          int64, 0-based half-open (GTF/GFF3 start - 1, end)
    strand              '+' / '-'
    phase               int8, CDS phase (GTF frame / GFF3 phase column), -1 for non-CDS rows
    gene_id, gene_name, gene_biotype
    transcript_id       null for gene rows
    transcript_biotype
    tags                comma-separated tags ("Ensembl_canonical,MANE_Select"); "" when none
    source_line         1-based line of the input row (the first contributing row for a derived one)

Parquet key/value metadata: ``source`` (input path), ``format`` (gtf|gff3), ``sha256`` (of the input
file), and a JSON ``genoattn_annotation`` with counts (rows per feature, unmapped contigs and their
rows, derived rows).

What the parser does (so the table means the same thing whatever the input convention)
----------------------------------------------------------------------------------------
* GTF: rows are grouped by the ``gene_id`` / ``transcript_id`` attributes; genes and transcripts
  without their own row are derived from their exons/CDS (extent = min/max). An exon/CDS with a
  gene_id but no transcript_id belongs to a transcript synthesized with the gene's id.
* GFF3: the ID/Parent hierarchy; gene -> mRNA/transcript/tRNA/ncRNA/rRNA/... -> exon/CDS. Deeper
  chains (gene -> primary_transcript -> miRNA -> exon) take the top ancestor as gene. An exon/CDS
  whose Parent is a top-level gene gets a synthesized transcript (transcript_id = gene_id); one
  whose Parent is a top-level transcript-like row (mRNA, ...) gets a synthesized gene. A feature
  with several Parents belongs to each. Attribute values are percent-decoded (%3B -> ';').
  IDs become gene_id/transcript_id unless the row has gene_id/transcript_id attributes; the
  type prefixes of Ensembl (``gene:``, ``transcript:``) and NCBI (``gene-``, ``rna-``) are removed,
  so the ids match the same release's GTF.
* CDS rows include the stop codon whatever the input convention: GTF stop_codon rows (GTF 2.2 /
  Ensembl / GENCODE / NCBI keep the stop out of CDS) are merged into the abutting CDS, or added as
  a CDS row when a split stop codon has no CDS in its exon. A CDS with phase '.' gets the phase
  computed from the transcript's CDS order.
* A transcript without exon rows gets exons from the union of its CDS/UTR/codon rows, or one
  exon spanning it when it has none of those.
* Biotypes: gene_biotype / gene_type / biotype attributes; for GFF3 the row's type when there is
  none (transcript_biotype 'mRNA', 'tRNA', ...; gene_biotype only for types other than 'gene').
* Tags: every ``tag`` value (GTF repeated attribute or GFF3 comma list), spaces become '_'
  ("MANE Select" -> "MANE_Select", "RefSeq Select" -> "RefSeq_Select"), plus truthy canonical
  markers given as their own attribute (canonical, is_canonical, Ensembl_canonical, MANE_Select,
  RefSeq_Select). Transcript rows carry the union of their own tags and those of their exon/CDS
  rows; exon/CDS rows carry their transcript's tags; gene rows their own.
* gene_name: gene_name, then (gene rows) Name, then gene attributes; transcripts and exons
  inherit their gene's values.
* Contigs are mapped onto the reference with :class:`genoattn.contigs.ContigMap`; rows on a
  contig the reference lacks keep ``contig`` null (counted in the metadata and logged). A
  coordinate beyond the contig's length is an error.

Bad input (wrong column count, non-integer coordinates, start > end, start < 1, bad strand or CDS
phase, unknown format or compression, a GFF3 Parent that never appears as an ID) raises
:class:`AnnotationError` naming the file, the 1-based line, the record and the fix; the output is
written under a temporary name and renamed into place only when complete.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import unquote

import numpy as np
import pandas as pd

log = logging.getLogger("genoattn.annotation")

COLUMNS = ("feature", "contig", "source_contig", "start", "end", "strand", "phase", "gene_id", "gene_name",
           "gene_biotype", "transcript_id", "transcript_biotype", "tags", "source_line")
FEATURES = ("gene", "transcript", "exon", "CDS")
META_KEY = "genoattn_annotation"


class AnnotationError(ValueError):
    """Bad annotation input; the message names the file, the line, the record and the fix."""


# ---------------------------------------------------------------------------------------------
# feature types
_LEAF_KIND = {
    "exon": "exon", "noncoding_exon": "exon", "pseudogenic_exon": "exon", "coding_exon": "exon",
    "CDS": "CDS", "cds": "CDS",
    "five_prime_UTR": "utr", "three_prime_UTR": "utr", "UTR": "utr", "five_prime_utr": "utr",
    "three_prime_utr": "utr", "5UTR": "utr", "3UTR": "utr", "UTR5": "utr", "UTR3": "utr",
    "start_codon": "start_codon", "stop_codon": "stop_codon",
}
_GTF_KIND = dict(_LEAF_KIND, gene="gene", transcript="transcript")
_GENE_TYPES = {"gene", "pseudogene", "ncRNA_gene", "transposable_element_gene", "blocked_reading_frame",
               "protein_coding_gene", "rRNA_gene", "tRNA_gene", "snRNA_gene", "snoRNA_gene", "miRNA_gene"}
_STRANDS = {"+", "-", ".", "?"}
_PHASES = {"0": 0, "1": 1, "2": 2, ".": None}

# canonical markers given as their own attribute -> the tag they become
_CANONICAL_KEYS = {"canonical": "canonical", "is_canonical": "canonical", "ensembl_canonical": "Ensembl_canonical",
                   "mane_select": "MANE_Select", "refseq_select": "RefSeq_Select",
                   "mane_plus_clinical": "MANE_Plus_Clinical"}
_FALSY = {"", "0", "false", "no", "n", "f", "."}
# GFF3 attributes kept (the others are skipped while parsing)
_GFF_KEEP = {"ID", "Parent", "Name", "gene_name", "gene", "gene_id", "transcript_id", "biotype", "gene_biotype",
             "gene_type", "transcript_biotype", "transcript_type", "tag"}
_GTF_ATTR = re.compile(r'([A-Za-z_][\w.\-]*)\s+(?:"([^"]*)"|([^;\s"]+))')

_GENE_PREFIXES = ("gene:", "gene-")
_TX_PREFIXES = ("transcript:", "rna-")


def _norm_tag(value: str) -> str:
    return "_".join(value.split())


# ---------------------------------------------------------------------------------------------
# opening and format detection
def _compression(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head[:2] == b"\x1f\x8b":
        return "gzip"  # plain gzip and bgzip both (bgzip = multi-member gzip)
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "plain"


def _open_text(path: Path):
    kind = _compression(path)
    if kind == "gzip":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=None)
    if kind != "plain":
        raise AnnotationError(
            f"{path}: {kind}-compressed annotation; only plain text, gzip and bgzip are read. "
            f"Fix: recompress it (`{ {'bzip2': 'bzcat', 'xz': 'xzcat', 'zstd': 'zstdcat'}[kind]} {path} | gzip -c > "
            f"{path.with_suffix('')}.gz`) and point the config at the .gz file.")
    return open(path, encoding="utf-8", errors="replace", newline=None)


def detect_format(path: str | os.PathLike) -> str:
    """'gtf' or 'gff3', from the header directive or the first data line's attribute syntax,
    then the file extension; anything else is an :class:`AnnotationError`."""
    path = Path(path)
    first = None
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno > 1000:
                break
            if line.startswith("##gff-version"):
                version = line.split()[1] if len(line.split()) > 1 else ""
                return "gff3" if version.startswith("3") else "gtf"
            if line.startswith("#gtf-version"):
                return "gtf"
            if line.startswith(("#", "track ", "browser ")) or not line.strip():
                continue
            first = (lineno, line.rstrip("\r\n"))
            break
    if first is not None:
        cols = first[1].split("\t")
        if len(cols) >= 9:
            attr = cols[8].strip()
            if re.match(r'[A-Za-z_][\w.\-]*\s+("|[^=;\s]+\s*(;|$))', attr):
                return "gtf"
            if re.match(r"[^=;\s]+=", attr):
                return "gff3"
    name = path.name.lower()
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if first is not None and len(first[1].split("\t")) >= 9:
        if name.endswith(".gtf") or name.endswith(".gff2"):
            return "gtf"
        if name.endswith(".gff3") or name.endswith(".gff"):
            return "gff3"
    shown = repr(first[1][:120]) if first else "no data line"
    where = f", line {first[0]}" if first else ""
    raise AnnotationError(
        f"{path}{where}: cannot tell whether this is GTF or GFF3 ({shown}): expected 9 tab-separated "
        f"columns with attributes like `gene_id \"X\";` (GTF) or `ID=X;Parent=Y` (GFF3). "
        f"Fix: point references.<name>.annotation at a GTF (.gtf) or GFF3 (.gff3) file, optionally gzip/bgzip "
        f"compressed (BED, GenBank or FASTA annotations must be converted first, e.g. with AGAT or gffread).")


# ---------------------------------------------------------------------------------------------
# errors with the record
def _err(path, lineno: int, line: str, problem: str, fix: str) -> AnnotationError:
    rec = line.rstrip("\r\n")
    if len(rec) > 200:
        rec = rec[:200] + "..."
    return AnnotationError(f"{path}, line {lineno}: {problem}. Record: {rec!r}. Fix: {fix}")


def _read_line(path: Path, lineno: int) -> str:
    with _open_text(path) as fh:
        for i, line in enumerate(fh, 1):
            if i == lineno:
                return line
    return ""


def _split_columns(line: str, path, lineno: int) -> list[str]:
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != 9:
        while len(cols) > 9 and not cols[-1].strip():  # tolerate trailing tabs
            cols.pop()
        if len(cols) != 9:
            hint = " (the line has spaces where tabs belong?)" if len(cols) == 1 and len(line.split()) >= 9 else ""
            raise _err(path, lineno, line, f"{len(cols)} tab-separated columns, GTF/GFF3 have 9{hint}",
                       "separate the 9 columns (seqid, source, type, start, end, score, strand, phase, attributes) "
                       "with single tabs, or remove the line")
    return cols


def _coords(s: str, e: str, line: str, path, lineno: int) -> tuple[int, int]:
    try:
        start = int(s)
        end = int(e)
    except ValueError:
        raise _err(path, lineno, line, f"start/end {s!r}/{e!r} are not integers",
                   "columns 4 and 5 must be 1-based integer coordinates") from None
    if start < 1:
        raise _err(path, lineno, line, f"start {start} < 1 (GTF/GFF3 coordinates are 1-based)",
                   "convert 0-based coordinates to 1-based (start + 1), or remove the line")
    if start > end:
        raise _err(path, lineno, line, f"start {start:,} > end {end:,}",
                   "swap start and end (the strand column gives the orientation), or remove the line")
    return start - 1, end


# ---------------------------------------------------------------------------------------------
# intermediate model
class _Gene:
    __slots__ = ("gene_id", "seqid", "start", "end", "strand", "line", "name", "biotype", "tags", "txs")

    def __init__(self, gene_id, seqid=None, start=None, end=None, strand=".", line=None, name=None,
                 biotype=None, tags=None):
        self.gene_id, self.seqid, self.start, self.end, self.strand = gene_id, seqid, start, end, strand
        self.line, self.name, self.biotype, self.tags = line, name, biotype, tags or []
        self.txs = []


class _Tx:
    __slots__ = ("transcript_id", "seqid", "start", "end", "strand", "line", "biotype", "tags", "leaves", "tag_block")

    def __init__(self, transcript_id, seqid=None, start=None, end=None, strand=".", line=None, biotype=None,
                 tags=None):
        self.transcript_id, self.seqid, self.start, self.end, self.strand = transcript_id, seqid, start, end, strand
        self.line, self.biotype, self.tags = line, biotype, dict.fromkeys(tags or ())
        self.leaves = []  # [kind, seqid, start, end, strand, phase, line]
        self.tag_block = None


class _Stats:
    def __init__(self):
        self.max_end: dict[str, tuple[int, int]] = {}
        self.stop_codons_merged = 0
        self.cds_added_from_stop = 0
        self.phases_computed = 0
        self.exons_derived = 0
        self.transcripts_synthesized = 0
        self.genes_synthesized = 0
        self.dropped_unstranded = 0


# ---------------------------------------------------------------------------------------------
# GTF
# literal-prefix patterns (fast in `re`); a match counts only at a key boundary (not locus_tag)
_GTF_TAG = re.compile(r'tag\s+"([^"]*)"')
_GTF_TID = re.compile(r'transcript_id\s+"([^"]*)"')
_KEY_START = " ;\t"


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


# ---------------------------------------------------------------------------------------------
# GFF3
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
                           "fix the ID/Parent attributes so that genes are at the top")
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


# ---------------------------------------------------------------------------------------------
# from the model to rows
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


# ---------------------------------------------------------------------------------------------
# public API
def _table(rows: list[tuple], path: Path, st: _Stats, contig_map, contig_lengths):
    """Rows -> the sorted DataFrame (column arrays, one lexsort, one Arrow conversion: few copies)."""
    import pyarrow as pa

    (feature, source_contig, start, end, strand, phase, gene_id, gene_name, gene_biotype, transcript_id,
     transcript_biotype, tags, source_line, gstart, tstart, rank) = zip(*rows)
    rows.clear()

    def obj(values):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    src_codes, sources = pd.factorize(obj(source_contig))
    sources = [str(x) for x in sources]
    mapping = {s_: (contig_map.map(s_) if contig_map is not None else s_) for s_ in sources}
    if contig_lengths is not None:
        for s_, (e_, lineno) in st.max_end.items():
            ref = contig_map.map(s_) if contig_map is not None else s_
            if ref is not None and ref in contig_lengths and e_ > contig_lengths[ref]:
                raise _err(path, lineno, _read_line(path, lineno),
                           f"end {e_:,} is beyond the length of contig {ref!r} ({contig_lengths[ref]:,} bp)"
                           + (f" (named {s_!r} in the annotation)" if s_ != ref else ""),
                           "use the annotation of the same assembly as the reference FASTA, or fix "
                           "contig_aliases if this contig was mapped to the wrong reference contig")
    ref_order = {}
    if contig_map is not None:
        ref_order = {n: i for i, n in enumerate(contig_map.reference)}
    elif contig_lengths is not None:
        ref_order = {n: i for i, n in enumerate(contig_lengths)}
    ranks = np.array([ref_order.get(mapping[s_], len(ref_order) + i) if mapping[s_] is not None
                      else len(ref_order) + i for i, s_ in enumerate(sources)], dtype=np.int64)
    per_source = np.bincount(src_codes, minlength=len(sources))
    unmapped = {s_: int(per_source[i]) for i, s_ in enumerate(sources) if mapping[s_] is None}

    feature = obj(feature)
    start = np.asarray(start, dtype=np.int64)
    gene_id = obj(gene_id)
    transcript_id = obj(transcript_id)
    gid_codes, _ = pd.factorize(gene_id, sort=True)
    tid_codes, _ = pd.factorize(transcript_id, sort=True)  # None -> -1: gene rows first
    # order: contig, gene (start, id), transcript (start, id), gene < transcript < exon/CDS, start, exon < CDS
    order = np.lexsort((feature == "CDS", start, np.asarray(rank, dtype=np.int8), tid_codes,
                        np.asarray(tstart, dtype=np.int64), gid_codes, np.asarray(gstart, dtype=np.int64),
                        ranks[src_codes]))
    del gid_codes, tid_codes
    contigs = obj([mapping[s_] for s_ in sources])
    s_ = pa.string()
    columns = {
        "feature": pa.array(feature[order], s_),
        "contig": pa.array(contigs[src_codes[order]], s_),
        "source_contig": pa.array(obj(sources)[src_codes[order]], s_),
        "start": pa.array(start[order], pa.int64()),
        "end": pa.array(np.asarray(end, dtype=np.int64)[order], pa.int64()),
        "strand": pa.array(obj(strand)[order], s_),
        "phase": pa.array(np.asarray(phase, dtype=np.int8)[order], pa.int8()),
        "gene_id": pa.array(gene_id[order], s_),
        "gene_name": pa.array(obj(gene_name)[order], s_),
        "gene_biotype": pa.array(obj(gene_biotype)[order], s_),
        "transcript_id": pa.array(transcript_id[order], s_),
        "transcript_biotype": pa.array(obj(transcript_biotype)[order], s_),
        "tags": pa.array(obj(tags)[order], s_),
        "source_line": pa.array(np.asarray(source_line, dtype=np.int64)[order], pa.int64()),
    }
    table = pa.Table.from_pydict(columns, schema=_arrow_schema())
    del columns
    return table.to_pandas(), mapping, unmapped


def parse_annotation(path: str | os.PathLike, fmt: str | None = None, contig_map=None,
                     contig_lengths: Mapping[str, int] | None = None, merge_stop_codons: bool = True,
                     source_name: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Parse a GTF/GFF3 into the annotation table.

    ``contig_map``: a :class:`genoattn.contigs.ContigMap` (None: contig = source_contig).
    ``contig_lengths``: reference name -> length; a feature ending beyond it is an error.
    Returns ``(table, metadata)``; the metadata dict is what :func:`write_annotation` stores.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found. "
                              f"Fix: check references.<name>.annotation in the config")
    fmt = fmt or detect_format(path)
    if fmt not in ("gtf", "gff3"):
        raise AnnotationError(f"{path}: format {fmt!r} is not gtf or gff3")
    st = _Stats()
    with _open_text(path) as fh:
        try:
            genes = _parse_gtf(fh, path, st) if fmt == "gtf" else _parse_gff3(fh, path, st)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise AnnotationError(f"{path}: cannot be read to the end ({exc}). Fix: the file is truncated or "
                                  f"corrupt; download it again and check its checksum") from None
    rows = _rows(genes, fmt, merge_stop_codons, st)
    del genes  # the parse model goes before the DataFrame is built (peak memory)
    if not rows:
        raise AnnotationError(f"{path}: no gene, transcript, exon or CDS features found ({fmt}). Fix: check that "
                              f"this is the gene annotation of the reference (types gene/mRNA/transcript/exon/CDS)")
    df, mapping, unmapped = _table(rows, path, st, contig_map, contig_lengths)
    del rows
    sources = list(mapping)

    counts = {f: int(n) for f, n in df["feature"].value_counts().items()}
    meta = {
        "source": source_name or str(path),
        "format": fmt,
        "sha256": _sha256(path),
        META_KEY: {
            "rows": counts,
            "genes": counts.get("gene", 0),
            "transcripts": counts.get("transcript", 0),
            "unmapped_contigs": unmapped,
            "unmapped_rows": int(sum(unmapped.values())),
            "contig_map": {s: mapping[s] for s in sources},
            "stop_codons_merged_into_cds": st.stop_codons_merged,
            "cds_rows_from_split_stop_codons": st.cds_added_from_stop,
            "cds_phases_computed": st.phases_computed,
            "exons_derived": st.exons_derived,
            "transcripts_synthesized": st.transcripts_synthesized,
            "genes_synthesized": st.genes_synthesized,
            "rows_dropped_without_strand": st.dropped_unstranded,
        },
    }
    return df, meta


def _sha256(path: Path) -> str:
    from genoattn.io.store import sha256_file
    return sha256_file(path)


def _arrow_schema():
    import pyarrow as pa
    s, i64 = pa.string(), pa.int64()
    return pa.schema([("feature", s), ("contig", s), ("source_contig", s), ("start", i64), ("end", i64),
                      ("strand", s), ("phase", pa.int8()), ("gene_id", s), ("gene_name", s), ("gene_biotype", s),
                      ("transcript_id", s), ("transcript_biotype", s), ("tags", s), ("source_line", i64)])


def write_annotation(df: pd.DataFrame, path: str | os.PathLike, meta: Mapping) -> None:
    """Write the table atomically (temporary file beside ``path``, then ``os.replace``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genoattn import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".tmp-*"):
        stale.unlink(missing_ok=True)
    table = pa.Table.from_pandas(df[list(COLUMNS)], schema=_arrow_schema(), preserve_index=False)
    kv = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    kv["genoattn_version"] = __version__
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in kv.items()}})
    tmp = path.parent / f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_annotation_metadata(path: str | os.PathLike) -> dict:
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in raw.items():
        k, v = k.decode(), v.decode()
        if k == "pandas":
            continue
        if k == META_KEY:
            v = json.loads(v)
        out[k] = v
    return out


def read_annotation(path: str | os.PathLike, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The annotation table as a DataFrame (contract columns; ``df.attrs`` holds the metadata)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    df = table.to_pandas()
    if "phase" in df:
        df["phase"] = df["phase"].astype(np.int8)
    df.attrs.update(read_annotation_metadata(path))
    return df


def build_annotation(annotation: str | os.PathLike, fasta: str | os.PathLike, output: str | os.PathLike,
                     contig_aliases: Mapping[str, str] | None = None, chr_prefix: str = "auto",
                     reference: str = "<reference>") -> dict:
    """Parse ``annotation`` against the reference ``fasta`` and write ``output`` (the workflow step).
    Returns the metadata."""
    import time

    from genoattn.contigs import ContigMap, canonical_fasta_names
    from genoattn.io.fasta import fasta_index

    t0 = time.time()
    records = fasta_index(fasta)
    names = canonical_fasta_names([r.name for r in records], contig_aliases)
    lengths = dict(zip(names, (r.length for r in records)))
    cmap = ContigMap(names, contig_aliases, chr_prefix)
    df, meta = parse_annotation(annotation, contig_map=cmap, contig_lengths=lengths)
    info = meta[META_KEY]
    info["reference"] = reference
    info["fasta"] = str(fasta)
    info["contig_aliases"] = dict(contig_aliases or {})
    info["chr_prefix"] = chr_prefix
    unmapped = info["unmapped_contigs"]
    if unmapped:
        msg = cmap.unmapped_message(list(unmapped), str(annotation), f"references.{reference}")
        log.warning("%s Their %d rows are kept with contig=null (source_contig holds the name) and later "
                    "levels skip them.", msg, info["unmapped_rows"])
    if info["rows_dropped_without_strand"]:
        log.warning("%s: %d gene/transcript/exon/CDS rows have no strand ('.') and none could be taken from "
                    "their transcript or gene; they are left out of the table.", annotation,
                    info["rows_dropped_without_strand"])
    derived = {k: info[k] for k in ("stop_codons_merged_into_cds", "cds_rows_from_split_stop_codons",
                                    "cds_phases_computed", "exons_derived", "transcripts_synthesized",
                                    "genes_synthesized") if info[k]}
    if derived:
        log.info("%s: derived rows: %s", annotation, ", ".join(f"{k}={v:,}" for k, v in derived.items()))
    write_annotation(df, output, meta)
    log.info("%s: %s (%s) -> %s: %s in %.1f s", reference, annotation, meta["format"], output,
             ", ".join(f"{n:,} {f}" for f, n in info["rows"].items()), time.time() - t0)
    return meta


def run(annotation, fasta, output, reference_cfg: Mapping, reference: str) -> dict:
    """Entry point of workflow/scripts/annotation.py."""
    return build_annotation(annotation, fasta, output, contig_aliases=reference_cfg.get("contig_aliases") or {},
                            chr_prefix=reference_cfg.get("chr_prefix", "auto"), reference=reference)
