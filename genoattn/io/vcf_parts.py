"""A genotype conversion split by region: plan the pieces, join them into one genotypes.zarr.

A cohort with ``split_bp`` is converted piece by piece (:func:`plan_parts`, one job each, each a
:func:`genoattn.io.vcf.convert_vcf` of one region); the pieces, in VCF order, are copied by
:func:`join_parts` into the store a single conversion writes:
the same arrays, chunks, contig table and attributes, with the filter counts summed. Copying is
streamed one chunk row of variants at a time, so memory is one chunk row whatever the cohort size;
zarr encodes the row's chunks (one per ``chunk_samples`` samples) on its thread pool. The join
decodes and re-encodes every genotype once: on the demo it costs ~40% of the CPU of the conversion
itself, in one job.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from genoattn.io.store import atomic_store, mark_coordinates, open_group
from genoattn.io.vcf import DROP_REASONS, VcfError, no_variant_left, parse_region

log = logging.getLogger(__name__)

VARIANT_ARRAYS = ("call_genotype", "call_genotype_mask", "call_genotype_phased", "variant_contig",
                  "variant_position", "variant_allele", "variant_id", "variant_maf", "variant_call_rate")
DIMS = {"call_genotype": ("variants", "samples", "ploidy"), "call_genotype_mask": ("variants", "samples", "ploidy"),
        "call_genotype_phased": ("variants", "samples"), "variant_allele": ("variants", "alleles")}
FILL = {"call_genotype": -1, "call_genotype_mask": True, "call_genotype_phased": False, "variant_contig": -1,
        "variant_allele": "", "variant_id": ""}


def plan_parts(vcf: str | os.PathLike, split_bp: int, regions: list[str] | None = None) -> list[str]:
    """The pieces of a conversion split every ``split_bp`` bp, as regions in the VCF's contig names
    (1-based inclusive, VCF order): each of ``regions`` (default: each contig of the VCF index) cut at
    ``start + k * split_bp``; the last piece of a whole contig is open-ended ('20:60000001'), so records past
    a (wrong) ``##contig`` length are still read. A record belongs to the piece holding its start, so the pieces' stores
    joined in order equal the store of one conversion (:func:`join_parts`). A
    contig whose header has no length stays one piece."""
    import pysam

    step = int(split_bp)
    if step < 1:
        raise VcfError(f"split_bp must be a positive number of bp, not {split_bp}")
    with pysam.VariantFile(str(vcf)) as vf:
        if regions:
            wanted = [parse_region(r) for r in regions]
        else:
            names = list(vf.index) if vf.index is not None else list(vf.header.contigs)
            wanted = [(c, None, None) for c in names]
        lengths = {c: vf.header.contigs[c].length for c in vf.header.contigs}
    parts = []
    for c, start, end in wanted:
        lo = start or 0
        hi = end if end is not None else lengths.get(c)
        if hi is None:
            parts.append(c if start is None else f"{c}:{lo + 1}")
            continue
        starts = list(range(lo, max(hi, lo + 1), step))
        for a in starts[:-1]:
            parts.append(f"{c}:{a + 1}-{a + step}")
        # the last piece of a contig runs to its end whatever the ##contig length says (a header length
        # shorter than the data must not drop records); within the user's region it stops at its end
        parts.append(f"{c}:{starts[-1] + 1}-{min(starts[-1] + step, end)}" if end is not None
                     else f"{c}:{starts[-1] + 1}")
    return parts


def join_parts(parts: list[str], out: str, config: dict | None = None, key: str = "cohorts.<name>") -> dict:
    """Write ``out`` from the piece stores ``parts`` (in VCF order); return the summed filter counts."""
    if not parts:
        raise VcfError(f"{key}: a split conversion without pieces; check {key}.regions and split_bp")
    t0 = time.time()
    groups = [open_group(p) for p in parts]
    first = groups[0]
    samples = first["sample_id"][:]
    for p, g in zip(parts, groups):
        if not np.array_equal(g["sample_id"][:], samples):
            raise VcfError(f"genotype piece {p} has other samples than {parts[0]}: the pieces come from different "
                           "runs; delete the genotypes_parts folder and rerun")
    contigs: list[str] = []
    lengths: dict[str, int] = {}
    for g in groups:
        for c, n in zip(g["contig_id"][:].tolist(), g["contig_length"][:].tolist()):
            if c not in lengths:
                contigs.append(c)
                lengths[c] = int(n)
    counts = {r: 0 for r in DROP_REASONS}
    n_records = 0
    for g in groups:
        fc = dict(g.attrs["filter_counts"])
        n_records += int(fc["records"])
        for r, n in fc["dropped"].items():
            counts[r] = counts.get(r, 0) + int(n)
    sizes = [g["variant_position"].shape[0] for g in groups]
    total = int(sum(sizes))
    if total == 0:
        raise no_variant_left(first.attrs.get("source", parts[0]), n_records, counts, key)

    attrs = {k: v for k, v in first.attrs.asdict().items()
             if k not in ("filter_counts", "coordinate_variables", "config", "contig_length")}
    attrs.update(config=dict(config or first.attrs.get("config", {})), contig_length=lengths, parts=len(parts))
    with atomic_store(out, attrs=attrs) as w:
        arrs = {}
        for name in VARIANT_ARRAYS:
            src = first[name]
            dims = DIMS.get(name, ("variants",))
            dtype = str if src.dtype.kind in "OUT" else src.dtype
            arrs[name] = w.create(name, (total,) + tuple(src.shape[1:]), dtype, dims, chunks=src.chunks,
                                  fill_value=FILL.get(name, 0))
        # one output chunk row at a time, gathered from the pieces it overlaps: every write is a whole,
        # aligned chunk row (no read-modify-write at the pieces' seams)
        step = first["call_genotype"].chunks[0]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        remaps = [np.array([contigs.index(c) for c in g["contig_id"][:].tolist()], dtype=np.int16) for g in groups]
        for a in range(0, total, step):
            b = min(a + step, total)
            spans = [(i, max(a, offsets[i]) - offsets[i], min(b, offsets[i + 1]) - offsets[i])
                     for i in range(len(groups)) if offsets[i] < b and offsets[i + 1] > a]
            for name in VARIANT_ARRAYS:
                blocks = []
                for i, lo, hi in spans:
                    block = groups[i][name][lo:hi]
                    blocks.append(remaps[i][block] if name == "variant_contig" else block)
                arrs[name][a:b] = np.concatenate(blocks)
        w.write("contig_id", np.array(contigs, dtype=object), dims=("contigs",))
        w.write("contig_length", np.array([lengths[c] for c in contigs], np.int64), dims=("contigs",))
        w.write("sample_id", samples.astype(object), dims=("samples",))
        summary = {"records": n_records, "kept": total, "dropped": counts,
                   "seconds": round(sum(float(g.attrs["filter_counts"]["seconds"]) for g in groups), 3)}
        w.group.attrs["filter_counts"] = summary
        mark_coordinates(w, "variant_position", "variant_contig", "variant_id", "sample_id", "contig_id")
    log.info("joined %d genotype pieces: %d variants x %d samples in %.1f s", len(parts), total, len(samples),
             time.time() - t0)
    return summary
