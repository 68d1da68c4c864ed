"""Transcript model built from the annotation table, shared by levels 2 and 3.

Input contract
--------------
The annotation table of :func:`genoattn.io.annotation.read_annotation` (one row per feature,
0-based half-open ``start``/``end``, ``strand`` '+'/'-', ``phase`` int8 (-1 when not CDS),
``gene_id``, ``gene_name``, ``gene_biotype``, ``transcript_id``, ``transcript_biotype``, ``tags``,
``contig`` (null when the annotation contig is not in the reference), ``source_contig``,
``source_line``).

What it gives
-------------
:class:`Transcript` objects with exons and CDS segments ordered **5'->3' on the transcript's
strand** (ascending coordinates on '+', descending on '-'), each CDS segment attached to the exon
that contains it, and the spliced CDS as genomic positions in transcript order
(:meth:`Transcript.cds_positions`; on '-' the positions run downwards and the bases are read as
their complement).

Reading frames (see :func:`codon_table`)
---------------------------------------
The annotated frame starts ``phase`` bases into the first CDS segment (GTF/GFF3 phase: bases to
skip to reach the first complete codon) and continues across exon junctions on the spliced CDS;
frames 1 and 2 start 1 and 2 bases further. Only complete codons are kept. A codon split by an
intron belongs to the exon that holds its **first** base (5'-most on the transcript strand); its
three base positions (``codon_base_position``) still follow the splice, so the token is the real
spliced codon. Exon ranks are 1-based, 5'->3'.

Bad input (issue item 5), each reported with the transcript id and counted in ``qc``:
``missing_contig`` (annotation contig not in the reference), ``mixed_contig``, ``mixed_strand``,
``overlapping_exons``, ``cds_outside_exon``, ``missing_phase`` (a CDS row without phase),
``phase_mismatch`` (a CDS phase that disagrees with the length of the CDS before it on the
spliced transcript), ``cds_not_multiple_of_3`` (coding length after the first phase; not
checked for transcripts tagged ``cds_end_NF``/``mRNA_end_NF``, whose trailing partial codon is
dropped).
``on_error='skip'`` drops the transcript (and a gene left without transcripts); ``'error'``
raises :class:`AnnotationModelError` naming the annotation file, the transcript, its first source
line and the fix. Informational counts (not errors): ``exons_from_cds`` (a coding transcript
without exon rows gets its CDS segments as exons), ``no_transcript_rows``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PROBLEMS = ("missing_contig", "mixed_contig", "mixed_strand", "overlapping_exons", "cds_outside_exon",
            "missing_phase", "phase_mismatch", "cds_not_multiple_of_3")
FIXES = {
    "missing_contig": "add the contig to references.<name>.contig_aliases or remove its features",
    "mixed_contig": "a transcript must lie on one contig: give the pieces different transcript ids",
    "mixed_strand": "a transcript must lie on one strand: correct the strand column of its rows",
    "overlapping_exons": "exons of one transcript must not overlap: merge or correct them",
    "cds_outside_exon": "every CDS segment must lie inside one exon of its transcript",
    "missing_phase": "give every CDS row a phase (0, 1 or 2; column 8 of GTF/GFF3)",
    "phase_mismatch": "phase must be (3 - (CDS length before this segment - first phase) % 3) % 3",
    "cds_not_multiple_of_3": "the CDS length after the first phase must be a multiple of 3 "
                             "(or mark the transcript incomplete by giving its first CDS a phase)",
}
#: a transcript tagged so may end inside a codon (GENCODE/Ensembl): not a cds_not_multiple_of_3 problem
END_INCOMPLETE_TAGS = ("cds_end_NF", "mRNA_end_NF")
def _default_canonical_tags() -> tuple[str, ...]:
    from genoattn.config import defaults

    return tuple(defaults("levels.annotation")["canonical_tags"])  # one source: the config schema


DEFAULT_CANONICAL_TAGS = _default_canonical_tags()

#: exon types (level 3 embeds them)
EXON_TYPES = ("noncoding_transcript", "utr5", "utr3", "cds", "utr5_cds", "cds_utr3", "utr5_cds_utr3")


class AnnotationModelError(ValueError):
    """A transcript of the annotation is unusable and levels.annotation.on_error is 'error'."""


@dataclass
class Transcript:
    transcript_id: str
    gene_id: str
    gene_name: str
    gene_biotype: str
    transcript_biotype: str
    contig: str
    strand: str
    tags: tuple[str, ...]
    exons: np.ndarray  # [n, 2] int64, 5'->3'
    cds: np.ndarray  # [m, 2] int64, 5'->3'
    cds_phase: np.ndarray  # [m] int8
    cds_exon: np.ndarray  # [m] int64 index into exons
    source_line: int = 0

    @property
    def coding(self) -> bool:
        return len(self.cds) > 0

    @property
    def start(self) -> int:
        return int(self.exons[:, 0].min())

    @property
    def end(self) -> int:
        return int(self.exons[:, 1].max())

    @property
    def cds_length(self) -> int:
        return int((self.cds[:, 1] - self.cds[:, 0]).sum()) if self.coding else 0

    @property
    def length(self) -> int:
        return int((self.exons[:, 1] - self.exons[:, 0]).sum())

    @property
    def first_phase(self) -> int:
        return int(self.cds_phase[0]) if self.coding else 0

    def cds_positions(self) -> np.ndarray:
        """Genomic positions of the spliced CDS in transcript (5'->3') order."""
        return _spliced_positions(self.cds, self.strand)

    def exon_cds_interval(self) -> np.ndarray:
        """[n, 2] genomic CDS part of each exon ([-1, -1] where none)."""
        out = np.full((len(self.exons), 2), -1, dtype=np.int64)
        for (s, e), k in zip(self.cds, self.cds_exon):
            out[k] = (s, e)
        return out

    def exon_types(self) -> np.ndarray:
        """Index into EXON_TYPES per exon."""
        if not self.coding:
            return np.zeros(len(self.exons), dtype=np.int64)
        first, last = int(self.cds_exon[0]), int(self.cds_exon[-1])
        types = np.zeros(len(self.exons), dtype=np.int64)
        cds_iv = self.exon_cds_interval()
        for i, (s, e) in enumerate(self.exons):
            if i < first:
                types[i] = 1
            elif i > last:
                types[i] = 2
            else:
                cs, ce = cds_iv[i]
                if cs < 0:  # an exon between coding exons without CDS (should not happen)
                    types[i] = 3
                    continue
                # 5' / 3' untranslated parts inside this exon, on the transcript strand
                up = (cs > s) if self.strand == "+" else (ce < e)
                down = (ce < e) if self.strand == "+" else (cs > s)
                types[i] = {(False, False): 3, (True, False): 4, (False, True): 5, (True, True): 6}[(up, down)]
        return types


def _spliced_positions(segments: np.ndarray, strand: str) -> np.ndarray:
    if len(segments) == 0:
        return np.zeros(0, dtype=np.int64)
    if strand == "+":
        return np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in segments])
    return np.concatenate([np.arange(e - 1, s - 1, -1, dtype=np.int64) for s, e in segments])


@dataclass
class TranscriptModel:
    transcripts: list[Transcript]
    qc: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # transcript_id -> problem
    genes: pd.DataFrame | None = None  # gene table of the selected transcripts

    def for_contig(self, contig: str) -> list[Transcript]:
        return [t for t in self.transcripts if t.contig == contig]


def _order(iv: np.ndarray, strand: str) -> np.ndarray:
    idx = np.argsort(iv[:, 0], kind="stable")
    return idx if strand == "+" else idx[::-1]


def _check_transcript(contig, strand, feature, start, end, phase, end_incomplete=False) -> tuple[str | None, dict]:
    """Return (problem, parts) for one transcript's exon/CDS rows (numpy arrays of its rows)."""
    if any(c is None or c is pd.NA or (isinstance(c, float) and np.isnan(c)) for c in contig):
        return "missing_contig", {}
    if len(set(contig)) > 1:
        return "mixed_contig", {}
    if len(set(strand)) > 1 or strand[0] not in ("+", "-"):
        return "mixed_strand", {}
    strand = strand[0]
    is_exon = feature == "exon"
    is_cds = ~is_exon
    exons = np.stack([start[is_exon], end[is_exon]], axis=1).astype(np.int64)
    cds = np.stack([start[is_cds], end[is_cds]], axis=1).astype(np.int64)
    phase = phase[is_cds].astype(np.int64)
    from_cds = False
    if len(exons) == 0:
        exons, from_cds = cds.copy(), True
    o = _order(exons, strand)
    exons = exons[o]
    if len(exons) > 1:
        asc = exons[np.argsort(exons[:, 0], kind="stable")]
        if np.any(asc[1:, 0] < asc[:-1, 1]):
            return "overlapping_exons", {}
    cds_exon = np.zeros(len(cds), dtype=np.int64)
    if len(cds):
        o = _order(cds, strand)
        cds, phase = cds[o], phase[o]
        if len(cds) > 1:
            asc = cds[np.argsort(cds[:, 0], kind="stable")]
            if np.any(asc[1:, 0] < asc[:-1, 1]):
                return "overlapping_exons", {}
        inside = (exons[None, :, 0] <= cds[:, None, 0]) & (exons[None, :, 1] >= cds[:, None, 1])
        if np.any(inside.sum(axis=1) != 1):
            return "cds_outside_exon", {}
        cds_exon = inside.argmax(axis=1).astype(np.int64)
        if np.any(phase < 0) or np.any(phase > 2):
            return "missing_phase", {}
        lengths = cds[:, 1] - cds[:, 0]
        before = np.concatenate([[0], np.cumsum(lengths)[:-1]]) - phase[0]
        expected = (3 - before % 3) % 3
        if np.any(expected[1:] != phase[1:]):
            return "phase_mismatch", {}
        if (lengths.sum() - phase[0]) % 3 and not end_incomplete:
            return "cds_not_multiple_of_3", {}
    return None, dict(strand=strand, contig=contig[0], exons=exons, cds=cds,
                      phase=phase.astype(np.int8), cds_exon=cds_exon, from_cds=from_cds)


def _col(df: pd.DataFrame, name: str, default=""):
    if name not in df:
        return np.full(len(df), default, dtype=object)
    return df[name].to_numpy(dtype=object)


def build_transcripts(annotation: pd.DataFrame, on_error: str = "skip", select: str = "canonical",
                      canonical_tags=DEFAULT_CANONICAL_TAGS, contigs=None, source: str = "annotation") -> TranscriptModel:
    """Build, check and select transcripts.

    ``contigs``: restrict to these reference contigs (a transcript with no row on them is not
    built, nor counted), except that transcripts on no reference contig at all are always
    checked, so each per-contig job counts them as ``missing_contig`` (and stops on them when
    ``on_error='error'``). ``select``: 'canonical', 'longest' or 'all' (levels.annotation.transcripts).
    """
    if on_error not in ("skip", "error"):
        raise ValueError(f"levels.annotation.on_error={on_error!r}; allowed: skip, error")
    if select not in ("canonical", "longest", "all"):
        raise ValueError(f"levels.annotation.transcripts={select!r}; allowed: canonical, longest, all")
    ann = annotation
    feats = ann[ann["feature"].isin(["exon", "CDS"]).to_numpy() & ann["transcript_id"].notna().to_numpy()]
    if contigs is not None:
        # the contig's transcripts, plus those on no reference contig at all (annotation contig missing
        # from the reference): every per-contig job reports and counts them (annotation-wide count)
        wanted = set(feats.loc[feats["contig"].isin(set(contigs)), "transcript_id"])
        has_ref = set(feats.loc[feats["contig"].notna(), "transcript_id"])
        nowhere = set(feats["transcript_id"]) - has_ref
        feats = feats[feats["transcript_id"].isin(wanted | nowhere)]
    # transcript-level metadata from the transcript rows (first row wins), else from its features
    meta: dict[str, tuple] = {}
    tr = ann[ann["feature"] == "transcript"]
    for row in zip(_col(tr, "transcript_id"), _col(tr, "gene_name"), _col(tr, "gene_biotype"),
                   _col(tr, "transcript_biotype"), _col(tr, "tags")):
        meta.setdefault(row[0], row[1:])
    codes, uniques = pd.factorize(feats["transcript_id"], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    contig = _col(feats, "contig", None)[order]
    strand = _col(feats, "strand")[order]
    feature = _col(feats, "feature")[order]
    start = feats["start"].to_numpy(dtype=np.int64)[order]
    end = feats["end"].to_numpy(dtype=np.int64)[order]
    phase = feats["phase"].to_numpy(dtype=np.int64)[order] if "phase" in feats else np.full(len(order), -1)
    gene_id = _col(feats, "gene_id")[order]
    gname = _col(feats, "gene_name")[order]
    gbio = _col(feats, "gene_biotype")[order]
    tbio = _col(feats, "transcript_biotype")[order]
    lines = _col(feats, "source_line", 0)[order]
    ftags = _col(feats, "tags")[order]
    qc: Counter = Counter({k: 0 for k in PROBLEMS})
    skipped: dict[str, str] = {}
    built: list[Transcript] = []
    for k, tid in enumerate(uniques):
        a, b = bounds[k], bounds[k + 1]
        m = meta.get(tid)
        if m is None:  # no transcript row: metadata from the transcript's first exon/CDS row
            qc["no_transcript_rows"] += 1
            m = (gname[a], gbio[a], tbio[a], ftags[a])
        end_nf = m is not None and any(x in _s(m[3]).split(",") for x in END_INCOMPLETE_TAGS)
        problem, parts = _check_transcript(contig[a:b], strand[a:b], feature[a:b], start[a:b], end[a:b],
                                           phase[a:b], end_nf)
        if problem:
            qc[problem] += 1
            skipped[tid] = problem
            line = int(min(lines[a:b]) or 0)
            msg = (f"{source}: transcript {tid} (gene {gene_id[a]}, first row at line {line}): {problem}. "
                   f"Fix: {FIXES[problem]}")
            if on_error == "error":
                raise AnnotationModelError(f"{msg}; or set levels.annotation.on_error: skip to leave it out.")
            log.warning("skipped: %s", msg)
            continue
        if parts["from_cds"]:
            qc["exons_from_cds"] += 1
        tags = tuple(t for t in _s(m[3]).split(",") if t)
        built.append(Transcript(
            transcript_id=str(tid), gene_id=str(gene_id[a]), gene_name=_s(m[0]) or _s(gname[a]) or str(gene_id[a]),
            gene_biotype=_s(m[1]) or _s(gbio[a]), transcript_biotype=_s(m[2]) or _s(tbio[a]),
            contig=str(parts["contig"]), strand=parts["strand"], tags=tags, exons=parts["exons"],
            cds=parts["cds"], cds_phase=parts["phase"], cds_exon=parts["cds_exon"],
            source_line=int(min(lines[a:b]) or 0)))
    selected = select_transcripts(built, select, canonical_tags)
    qc["transcripts_built"] = len(built)
    qc["transcripts_selected"] = len(selected)
    genes = gene_table(ann, selected)
    return TranscriptModel(selected, dict(qc), skipped, genes)


def _s(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA else str(x)


def select_transcripts(transcripts: list[Transcript], select: str,
                       canonical_tags=DEFAULT_CANONICAL_TAGS) -> list[Transcript]:
    """Per gene: 'all'; 'longest' (longest CDS, then longest spliced length, then id);
    'canonical' (a tagged transcript, by tag priority, else as 'longest')."""
    if select == "all":
        return sorted(transcripts, key=lambda t: (t.contig, t.start, t.transcript_id))
    priority = {tag: i for i, tag in enumerate(canonical_tags)}
    by_gene: dict[tuple[str, str], list[Transcript]] = {}
    for t in transcripts:
        by_gene.setdefault((t.gene_id, t.contig), []).append(t)
    out = []
    for group in by_gene.values():
        def key(t):
            tag_rank = min((priority[x] for x in t.tags if x in priority), default=len(priority))
            if select == "longest":
                tag_rank = 0
            return (tag_rank, -t.cds_length, -t.length, t.transcript_id)
        out.append(min(group, key=key))
    return sorted(out, key=lambda t: (t.contig, t.start, t.transcript_id))


def gene_table(annotation: pd.DataFrame, transcripts: list[Transcript]) -> pd.DataFrame:
    """One row per gene with a selected transcript: id, name, biotype, contig, strand, start, end
    (the span of the gene row when the annotation has one, widened to its selected transcripts)."""
    cols = ["gene_id", "gene_name", "gene_biotype", "contig", "gene_strand", "gene_start", "gene_end"]
    rows: dict[tuple[str, str], list] = {}
    for t in transcripts:
        r = rows.get((t.gene_id, t.contig))
        if r is None:
            rows[(t.gene_id, t.contig)] = [t.gene_id, t.gene_name, t.gene_biotype, t.contig, t.strand, t.start, t.end]
        else:
            r[5], r[6] = min(r[5], t.start), max(r[6], t.end)
    g = annotation[annotation["feature"] == "gene"]
    for gid, contig, s, e, name, bio in zip(_col(g, "gene_id"), _col(g, "contig", None), g["start"].to_numpy(),
                                            g["end"].to_numpy(), _col(g, "gene_name"), _col(g, "gene_biotype")):
        r = rows.get((gid, contig))
        if r is not None:
            r[5], r[6] = min(r[5], int(s)), max(r[6], int(e))
            r[1] = _s(name) or r[1]
            r[2] = _s(bio) or r[2]
    df = pd.DataFrame(list(rows.values()), columns=cols)
    df["gene_start"] = df["gene_start"].astype(np.int64)
    df["gene_end"] = df["gene_end"].astype(np.int64)
    return df.sort_values(["contig", "gene_start", "gene_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# exon and codon tables


@dataclass
class ExonTable:
    """All exons of a list of transcripts, transcript by transcript, 5'->3' inside each."""
    exon_id: np.ndarray
    transcript_index: np.ndarray  # [exon] index into the transcript list
    transcript_id: np.ndarray
    gene_id: np.ndarray
    start: np.ndarray
    end: np.ndarray
    strand: np.ndarray
    rank: np.ndarray  # 1-based, 5'->3'
    cds_start: np.ndarray  # genomic CDS part, -1 when none
    cds_end: np.ndarray
    exon_type: np.ndarray  # index into EXON_TYPES
    transcript_offset: np.ndarray  # [transcript+1] exon offsets

    def __len__(self) -> int:
        return len(self.exon_id)


def exon_table(transcripts: list[Transcript]) -> ExonTable:
    ids, tix, tids, gids, st, en, sd, rk, cs, ce, ty = ([] for _ in range(11))
    offsets = [0]
    for i, t in enumerate(transcripts):
        n = len(t.exons)
        ids += [f"{t.transcript_id}:exon{r}" for r in range(1, n + 1)]
        tix.append(np.full(n, i))
        tids += [t.transcript_id] * n
        gids += [t.gene_id] * n
        st.append(t.exons[:, 0])
        en.append(t.exons[:, 1])
        sd += [t.strand] * n
        rk.append(np.arange(1, n + 1))
        civ = t.exon_cds_interval()
        cs.append(civ[:, 0])
        ce.append(civ[:, 1])
        ty.append(t.exon_types())
        offsets.append(offsets[-1] + n)

    def cat(x, dtype=np.int64):
        return np.concatenate(x).astype(dtype) if x else np.zeros(0, dtype)

    return ExonTable(np.array(ids, dtype=object), cat(tix), np.array(tids, dtype=object),
                     np.array(gids, dtype=object), cat(st), cat(en), np.array(sd, dtype=object), cat(rk),
                     cat(cs), cat(ce), cat(ty), np.asarray(offsets, dtype=np.int64))


@dataclass
class CodonTable:
    """Codons of all frames, grouped by exon (in exon-table order), 5'->3' inside an exon."""
    exon: np.ndarray  # [codon] index into the exon table
    frame: np.ndarray  # int8, 0 = annotated frame
    start: np.ndarray  # genomic position of the first base (transcript strand)
    base_position: np.ndarray  # [codon, 3] genomic positions of the bases, transcript order
    cds_offset: np.ndarray  # offset of the first base in the spliced CDS
    strand_minus: np.ndarray  # bool [codon]
    exon_offset: np.ndarray  # [exon+1]

    def __len__(self) -> int:
        return len(self.exon)


def codon_table(transcripts: list[Transcript], exons: ExonTable | None = None,
                frames=(0, 1, 2)) -> CodonTable:
    """Codon tokens of every coding transcript (see the module docstring for frame rules)."""
    exons = exons if exons is not None else exon_table(transcripts)
    parts_exon, parts_frame, parts_pos, parts_off, parts_minus = [], [], [], [], []
    for i, t in enumerate(transcripts):
        if not t.coding:
            continue
        pos = t.cds_positions()
        seg_len = t.cds[:, 1] - t.cds[:, 0]
        base_exon = np.repeat(t.cds_exon, seg_len) + exons.transcript_offset[i]
        p0 = t.first_phase
        offs = [np.arange(p0 + f, len(pos) - 2, 3, dtype=np.int64) for f in frames]
        fr = [np.full(len(o), f, dtype=np.int8) for o, f in zip(offs, frames)]
        off = np.concatenate(offs)
        fr = np.concatenate(fr)
        order = np.argsort(off, kind="stable")
        off, fr = off[order], fr[order]
        parts_off.append(off)
        parts_frame.append(fr)
        parts_exon.append(base_exon[off])
        parts_pos.append(pos[off[:, None] + np.arange(3)])
        parts_minus.append(np.full(len(off), t.strand == "-"))
    if parts_exon:
        ex = np.concatenate(parts_exon)
        order = np.argsort(ex, kind="stable")  # exons are contiguous per transcript already
        ex = ex[order]
        frame = np.concatenate(parts_frame)[order]
        bpos = np.concatenate(parts_pos)[order]
        off = np.concatenate(parts_off)[order]
        minus = np.concatenate(parts_minus)[order]
    else:
        ex = np.zeros(0, np.int64)
        frame = np.zeros(0, np.int8)
        bpos = np.zeros((0, 3), np.int64)
        off = np.zeros(0, np.int64)
        minus = np.zeros(0, bool)
    counts = np.bincount(ex, minlength=len(exons)) if len(exons) else np.zeros(0, np.int64)
    exon_offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return CodonTable(ex.astype(np.int64), frame, bpos[:, 0].copy(), bpos, off, minus, exon_offset)


def utr_positions(exons: ExonTable, i: int) -> np.ndarray:
    """Genomic positions, transcript order, of the non-CDS bases of exon ``i`` (the whole exon
    when it has no CDS)."""
    s, e, strand = int(exons.start[i]), int(exons.end[i]), exons.strand[i]
    cs, ce = int(exons.cds_start[i]), int(exons.cds_end[i])
    if cs < 0:
        segs = [(s, e)]
    else:
        segs = [(a, b) for a, b in ((s, cs), (ce, e)) if b > a]
    if strand == "-":
        segs = segs[::-1]
    return _spliced_positions(np.array(segs, dtype=np.int64).reshape(-1, 2), strand)
