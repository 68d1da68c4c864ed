"""Hi-C contact graph (per contig), TAD boundaries and trans-chromosomal links (genome-wide).

Stores (contract with levels 4 and 5, see README.md):

``results/{reference}/hic/{contig}.zarr`` — root attrs level="hic", contig, resolution, balance,
n_bins, n_edges, density, masked_fraction, top_percent, local_distance, cooler {path, uri},
contig_length_reference, contig_length_cooler, inputs, config, stats. Along ``bin``: ``chrom``,
``start``, ``end`` (coords), ``weight``, ``masked``, ``insulation``, ``boundary``,
``boundary_strength``; ``indptr`` [bin_ptr] (n_bins + 1), ``indices`` [edge] (source bin of each
edge, CSR by destination; the graph is symmetric), ``edge_features`` [edge, edge_feature] with
coordinate ``edge_feature`` (names; also attr ``edge_feature_names``).

``results/{reference}/hic/trans.zarr`` — along ``link``: ``chrom1``, ``start1``, ``chrom2``,
``start2``, ``score``, ``source`` ('hic' | 'breakpoint').
"""

from __future__ import annotations

import logging
import os

import numpy as np

from genoattn.hic.graph import EDGE_FEATURE_DOC, EDGE_FEATURE_NAMES, GraphParams, build_graph

log = logging.getLogger("genoattn.hic")

__all__ = ["run_contig", "run_trans", "open_reference_hic", "GraphParams", "build_graph", "EDGE_FEATURE_NAMES"]


def graph_params(cfg: dict) -> GraphParams:
    """GraphParams from the validated ``levels.hic`` section (defaults live in the config schema)."""
    return GraphParams(top_percent=float(cfg["top_percent"]), local_distance=int(cfg["local_distance"]),
                       pseudocount=float(cfg["pseudocount"]), chunk_pixels=int(cfg["chunk_pixels"]),
                       insulation_window=int(cfg["insulation_window"]), ignore_diags=int(cfg["ignore_diags"]),
                       boundary_threshold=cfg["boundary_threshold"],
                       min_frac_valid_pixels=float(cfg["min_frac_valid_pixels"]))


def open_reference_hic(ref: dict, contigs: list[str], cfg: dict):
    """Open the reference's cooler, checked against the FASTA for ``contigs``."""
    from genoattn.io.hic import hic_options, open_hic, reference_lengths

    if not ref.get("hic"):
        raise ValueError("this reference has no `hic` file; set references.<name>.hic")
    lengths = reference_lengths(ref["fasta"], ref["contig_aliases"])
    missing = [c for c in contigs if c not in lengths]
    if missing:
        raise ValueError(f"{ref['fasta']}: contig(s) {', '.join(missing)} not in the FASTA")
    src = open_hic(ref["hic"], lengths, contigs, **hic_options(ref, cfg))
    return src, lengths


def _base_attrs(src, ref: dict, cfg: dict, extra_inputs=()) -> dict:
    from genoattn.io.store import input_checksums
    return {"level": "hic", "resolution": src.resolution, "balance": src.balance,
            "balance_source": src.weights_source,
            "cooler": {"path": src.path, "uri": src.uri},
            "inputs": input_checksums([ref["fasta"], ref["hic"], *extra_inputs]),
            "config": {**cfg, "hic_resolution": ref["hic_resolution"], "hic_balance": src.balance,
                       "resolution": src.resolution}}


def run_contig(ref: dict, contig: str, out: str, cfg: dict) -> dict:
    """Build ``results/{reference}/hic/{contig}.zarr`` (checks ``contig`` against the cooler first)."""
    from genoattn.io.store import atomic_store, mark_coordinates

    src, _ = open_reference_hic(ref, [contig], cfg)
    params = graph_params(cfg)
    bins = src.bins(contig)
    m = src.contigs[contig]
    n = len(bins["start"])
    n_cooler = min(n, m.hi - m.lo) if m.cooler is not None else 0
    g = build_graph(src.clr, m.lo, n_cooler, bins["weight"], src.resolution, params)
    st = g["stats"]
    attrs = _base_attrs(src, ref, cfg)
    attrs.update({"contig": contig, "n_bins": n, "n_edges": st["n_edges"], "density": st["density"],
                  "masked_fraction": st["masked_fraction"], "top_percent": params.top_percent,
                  "local_distance": params.local_distance, "contig_length_reference": m.reference_length,
                  "contig_length_cooler": m.cooler_length, "cooler_chrom": m.cooler,
                  "missing_from_cooler": m.cooler is None, "stats": st,
                  "edge_feature_names": EDGE_FEATURE_NAMES, "model": None})
    with atomic_store(out, attrs=attrs) as w:
        w.write("bin", np.arange(n, dtype=np.int64), dims=("bin",))
        w.write("chrom", bins["chrom"], dims=("bin",))
        w.write("start", bins["start"], dims=("bin",))
        w.write("end", bins["end"], dims=("bin",))
        w.write("weight", bins["weight"], dims=("bin",))
        w.write("masked", bins["masked"], dims=("bin",))
        w.write("insulation", g["insulation"], dims=("bin",),
                attrs={"description": f"log2 diamond insulation score, window {params.insulation_window} bins, "
                                      "median-normalised (NaN where undefined)"})
        w.write("insulation_n_pixels", g["insulation_n_pixels"], dims=("bin",))
        w.write("boundary", g["boundary"], dims=("bin",))
        w.write("boundary_strength", g["boundary_strength"], dims=("bin",),
                attrs={"description": "prominence of the insulation minimum (0 where not a minimum)"})
        w.write("indptr", g["indptr"], dims=("bin_ptr",),
                attrs={"description": "CSR row pointer by destination bin: edges of bin i are indptr[i]:indptr[i+1]"})
        w.write("indices", g["indices"], dims=("edge",),
                attrs={"description": "source (neighbour) bin index within the contig of each edge"})
        w.write("edge_feature", np.array(EDGE_FEATURE_NAMES, dtype=object), dims=("edge_feature",))
        w.write("edge_features", g["edge_features"], dims=("edge", "edge_feature"),
                attrs={"edge_feature_names": EDGE_FEATURE_NAMES, "description": EDGE_FEATURE_DOC})
        w.write("expected", g["expected"], dims=("distance",),
                attrs={"description": "mean balanced contact by distance in bins (expected_cis balanced.avg)"})
        mark_coordinates(w, "chrom", "start", "end")
    return attrs


def run_trans(ref: dict, contigs: list[str], out: str, cfg: dict) -> dict:
    """Build ``results/{reference}/hic/trans.zarr`` (genome-wide)."""
    from genoattn.hic.trans import breakpoint_links, hic_trans_links
    from genoattn.io.store import atomic_store

    src, lengths = open_reference_hic(ref, contigs, cfg)
    links, stats = hic_trans_links(src, contigs, float(cfg["trans_top_percent"]), int(cfg["trans_max_links"]),
                                   float(cfg["pseudocount"]), int(cfg["chunk_pixels"]))
    extra = []
    if ref.get("hic_breakpoints"):
        bp, bstats = breakpoint_links(ref["hic_breakpoints"], src, contigs, list(lengths),
                                      ref["contig_aliases"], ref["chr_prefix"])
        links = {k: np.concatenate([links[k], bp[k]]) for k in links}
        stats.update(bstats)
        extra.append(ref["hic_breakpoints"])
    else:
        stats.update({"n_breakpoint_links": 0, "n_breakpoints_skipped": 0})
    attrs = _base_attrs(src, ref, cfg, extra)
    n = len(links["score"])
    attrs.update({"n_links": n, "n_hic_links": stats["n_hic_links"], "n_breakpoint_links": stats["n_breakpoint_links"],
                  "trans_top_percent": float(cfg["trans_top_percent"]),
                  "trans_max_links": int(cfg["trans_max_links"]),
                  "contigs": contigs, "stats": stats, "model": None,
                  "breakpoints": ref.get("hic_breakpoints")})
    with atomic_store(out, attrs=attrs) as w:
        w.write("link", np.arange(n, dtype=np.int64), dims=("link",))
        w.write("chrom1", links["chrom1"].astype(str).astype(object), dims=("link",))
        w.write("start1", np.asarray(links["start1"], np.int64), dims=("link",))
        w.write("chrom2", links["chrom2"].astype(str).astype(object), dims=("link",))
        w.write("start2", np.asarray(links["start2"], np.int64), dims=("link",))
        w.write("score", np.asarray(links["score"], np.float64), dims=("link",),
                attrs={"description": "observed/expected vs the mean trans contact of the chromosome pair; NaN for breakpoints"})
        w.write("source", links["source"].astype(str).astype(object), dims=("link",))
    return attrs
