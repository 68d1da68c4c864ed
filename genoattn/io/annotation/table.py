"""Rows -> the sorted annotation DataFrame: contig mapping onto the reference, the contig-length
check, and the row order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genoattn.io.annotation.errors import _err
from genoattn.io.annotation.model import _Stats
from genoattn.io.annotation.reading import _read_line
from genoattn.io.annotation.schema import _arrow_schema


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
