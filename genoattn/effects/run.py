"""`snakemake effects` / `genoattn effects`: what each variant of ``references.<name>.variants`` does, per level.

Inputs: the reference's variants (:mod:`genoattn.effects.variants`), its tokens and annotation, the stores
of levels 1-5 and the checkpoints they were made with (the same ``levels.*`` config). Outputs, written
under temporary names and renamed when complete:

* ``results/{reference}/effects/variants.parquet``: one row per variant (each ALT of a record), columns
  in :data:`COLUMNS`;
* ``results/{reference}/effects/variants.vcf.gz`` (+ ``.csi``): the input VCF's records with the INFO
  fields of :data:`INFO_FIELDS` added (per ALT; ``.`` where a level does not apply).

Per variant: the consequences on every transcript (:mod:`genoattn.effects.consequence`), the level-1
log-likelihood ratio and window change (:mod:`genoattn.effects.sequence`), the changes of the level-2 to
level-5 embeddings and the bins whose embeddings change most (:mod:`genoattn.effects.propagate`). A level
the reference lacks (no annotation: levels 2-3; no Hi-C: levels 4-5) leaves its columns NaN / empty, and
without a trained level-1 head the LLR is NaN; the parquet's metadata (``genoattn_effects``) says which
checkpoints were used and why a column is empty.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

COLUMNS = {
    "contig": "reference contig", "pos": "VCF POS (1-based)", "ref": "REF", "alt": "ALT", "vcf_chrom": "CHROM in the VCF",
    "vcf_id": "ID", "kind": "snv | insertion | deletion",
    "consequence": "most severe consequence (SO terms joined by &)", "gene_id": "its gene", "gene_name": "",
    "transcript_id": "its transcript", "strand": "", "protein_change": "e.g. 57H>57L (bcftools csq format)",
    "consequences": "every transcript's consequence, bcftools BCSQ layout, comma-separated",
    "llr": "level 1: log P(alt) - log P(ref), masked base, mean of both strands (nats; SNVs)",
    "llr_forward": "", "llr_reverse": "",
    "level1_window": "index of the variant's level-1 window", "level1_window_change": "L2 norm of the change",
    "level2_codon_change": "", "level2_exon_change": "", "level3_exon_change": "", "level3_transcript_change": "",
    "level3_gene_change": "", "level4_bin": "chrom:start-end (1-based)", "level4_bin_change": "",
    "level4_top_bins": "bins of the contig whose level-4 embedding changes most: chrom:start-end(genes)=size; ...",
    "level5_bin_change": "", "level5_top_bins": "bins of the genome whose level-5 embedding changes most",
}
#: INFO id -> (column, Number, Type, description)
INFO_FIELDS = {
    "GA_CSQ": ("consequences", ".", "String", "genoattn consequences per transcript: "
               "consequence|gene|transcript|biotype|strand|protein change|DNA change"),
    "GA_LLR": ("llr", "A", "Float", "genoattn level 1: log P(alt)/P(ref) of the masked base, both strands (nats)"),
    "GA_L1": ("level1_window_change", "A", "Float", "genoattn: size of the change of the level-1 window embedding"),
    "GA_L2": ("level2_codon_change", "A", "Float", "genoattn: size of the change of the variant's codon embedding"),
    "GA_L3": ("level3_gene_change", "A", "Float", "genoattn: size of the change of the gene embedding"),
    "GA_L4": ("level4_bin_change", "A", "Float", "genoattn: size of the change of the variant's level-4 bin"),
    "GA_L5": ("level5_bin_change", "A", "Float", "genoattn: size of the change of the variant's level-5 bin"),
    "GA_L4_TOP": ("level4_top_bins", ".", "String", "genoattn: bins whose level-4 embedding changes most"),
}


def run(inputs: dict, output: str, reference: str, ref_cfg: dict, levels: dict, kernels_cfg: dict) -> dict:
    """Compute every variant's effects and write the parquet ``output`` and the VCF beside it."""
    import torch

    from genoattn.contigs import ContigMap
    from genoattn.effects import consequence as cq
    from genoattn.effects import sequence as sq
    from genoattn.effects.variants import letters_of, read_variants
    from genoattn.io.fasta import fasta_index
    from genoattn.io.store import open_group, read_attrs
    from genoattn.levels.level1 import load_model
    from genoattn.model import pick_device
    from genoattn.runtime import Progress

    t0 = time.time()
    cfg = levels["effects"]
    device = pick_device(kernels_cfg["device"])
    backend = kernels_cfg.get("backend")
    tokens_path = inputs["tokens"]
    selected = list(read_attrs(tokens_path)["contigs"])
    names = [r.name for r in fasta_index(inputs["fasta"])]
    aliases = ref_cfg.get("contig_aliases") or {}
    cmap = ContigMap([aliases.get(n, n) for n in names], aliases, ref_cfg.get("chr_prefix", "auto"))
    arrays = {c: open_group(tokens_path, c)["tokens"] for c in selected}
    letters = {c: letters_of(a) for c, a in arrays.items()}
    variants, skipped = read_variants(inputs["variants"], cmap, letters, set(selected), int(cfg["max_indel"]),
                                      key=f"references.{reference}.variants")
    log.info("effects %s: %d variants from %s (left out: %s)", reference, len(variants), inputs["variants"],
             {k: v for k, v in skipped.items() if v} or "none")

    l1 = dict(levels["level1"])
    module, identity1 = load_model(l1, device)
    head, head_note = sq.load_head(l1["checkpoint"], module.dim, device)
    if head is None:
        log.warning("effects: %s", head_note)
    annotation = None
    transcripts_all: dict[str, list] = {}
    if inputs.get("annotation"):
        from genoattn import transcripts as tx
        from genoattn.io.annotation import read_annotation

        annotation = read_annotation(inputs["annotation"])
        model = tx.build_transcripts(annotation, on_error="skip", select="all")
        for t in model.transcripts:
            transcripts_all.setdefault(t.contig, []).append(t)
    genes_at = _gene_lookup(annotation)

    genome = None
    if inputs.get("level5"):
        from genoattn.levels.chromosome import GenomeBins

        genome = GenomeBins(list(inputs["level4"]), _with_checkpoint(levels["level5"], inputs.get("level5_checkpoint")),
                            inputs.get("trans"), kernels_cfg)

    table = variants.copy()
    for col in COLUMNS:
        if col not in table:
            table[col] = np.nan if col.startswith(("llr", "level")) and not col.endswith(("_bin", "_bins")) else ""
    table["level1_window"] = -1
    seconds = {"consequences": 0.0, "level1_llr": 0.0, "level1_windows": 0.0, "levels_2_3": 0.0, "levels_4_5": 0.0}
    progress = Progress(len(table), f"effects {reference} variants")
    per_contig = {c: i for i, c in enumerate(selected)}
    for contig, rows in table.groupby("contig", sort=False).groups.items():
        rows = np.asarray(rows)
        tokens = np.asarray(arrays[contig][:])
        sub = table.loc[rows]
        tick = time.time()
        index = cq.TranscriptIndex(transcripts_all.get(contig, []))
        cons = [cq.variant_consequences(index.near(s, s + max(len(r), 1)), s, r, a, letters[contig])
                for s, r, a in zip(sub["start"], sub["ref"], sub["alt"])]
        first = [c[0] for c in cons]
        table.loc[rows, "consequence"] = [c.consequence for c in first]
        table.loc[rows, "gene_id"] = [c.gene_id for c in first]
        table.loc[rows, "gene_name"] = [c.gene_name for c in first]
        table.loc[rows, "transcript_id"] = [c.transcript_id for c in first]
        table.loc[rows, "strand"] = [c.strand for c in first]
        table.loc[rows, "protein_change"] = [c.protein_change for c in first]
        table.loc[rows, "consequences"] = [",".join(x.bcsq() for x in c) for c in cons]
        snv = np.flatnonzero(sub["kind"].to_numpy() == "snv")
        seconds["consequences"] += time.time() - tick
        tick = time.time()
        if head is not None and len(snv):
            s = sub.iloc[snv]
            llr, lf, lr = sq.snv_llr(module, head, tokens, s["start"].to_numpy(), list(s["ref"]), list(s["alt"]),
                                     module.window, device, int(cfg["batch_size"]), backend)
            table.loc[rows[snv], "llr"] = llr
            table.loc[rows[snv], "llr_forward"] = lf
            table.loc[rows[snv], "llr_reverse"] = lr
        seconds["level1_llr"] += time.time() - tick
        coding = hic = None
        i = per_contig[contig]
        if annotation is not None and inputs.get("level2"):
            from genoattn.effects.propagate import CodingLevels

            coding = CodingLevels(annotation, contig, inputs["level1"][i], inputs["level2"][i],
                                  inputs["level3"][i] if inputs.get("level3") else None,
                                  {k: _with_checkpoint(levels[k], inputs.get(f"{k}_checkpoint"))
                                   for k in ("level2", "level3")} | {"annotation": levels["annotation"]},
                                  device, backend, inputs["annotation"])
        if inputs.get("level4"):
            from genoattn.effects.propagate import HicLevels
            from genoattn.levels.regulatory import ContigGraph

            graph = ContigGraph(inputs["hic"][i], inputs["level1"][i],
                                _with_checkpoint(levels["level4"], inputs.get("level4_checkpoint")),
                                inputs["level3"][i] if inputs.get("level3") else None, kernels_cfg, contig,
                                inputs.get("elements"),
                                {k: ref_cfg.get(k) for k in ("contig_aliases", "chr_prefix")})
            hic = HicLevels(contig, graph, genome, inputs["level1"][i],
                            inputs["level3"][i] if inputs.get("level3") else None, int(cfg["top_bins"]))
        tick = time.time()
        for b_rows, w_idx, _w_start, ref_out, alt_out, ref_tok, alt_tok in sq.window_passes(
                module, tokens, sub, module.window, int(l1["stride"]), bool(l1["reverse_complement"]), device,
                int(cfg["batch_size"]) // 2 or 1, backend):
            seconds["level1_windows"] += time.time() - tick
            d_win = (sq.window_embedding(alt_out, alt_tok) - sq.window_embedding(ref_out, ref_tok)).float().cpu().numpy()
            delta = (alt_out - ref_out).float().cpu().numpy()
            for j, r in enumerate(b_rows):
                row = rows[r]
                table.loc[row, "level1_window"] = int(w_idx[j])
                table.loc[row, "level1_window_change"] = float(np.linalg.norm(d_win[j]))
                v = sub.iloc[r]
                gene_deltas = {}
                tick = time.time()
                if coding is not None and v["kind"] == "snv":
                    ch = coding.changes(first[r].transcript_id or None, int(v["start"]), v["alt"],
                                        int(w_idx[j]) * int(l1["stride"]), delta[j])
                    gene_deltas = ch.pop("gene_deltas")
                    for k, val in ch.items():
                        table.loc[row, k] = val
                seconds["levels_2_3"] += time.time() - tick
                tick = time.time()
                if hic is not None:
                    for k, val in hic.changes(int(w_idx[j]), d_win[j], gene_deltas, int(v["start"]), genes_at).items():
                        table.loc[row, k] = val
                seconds["levels_4_5"] += time.time() - tick
            progress.update(len(b_rows))
            tick = time.time()
    meta = {"reference": reference, "variants": inputs["variants"], "n_variants": int(len(table)), "skipped": skipped,
            "level1": {"weights": identity1.get("weights"), "checkpoint": identity1.get("checkpoint"),
                       "head": head_note},
            "llr": "computed" if head is not None else head_note,
            "levels_2_3": "computed" if inputs.get("level2") else "the reference has no annotation",
            "levels_4_5": "computed" if inputs.get("level4") else "the reference has no Hi-C",
            "indels": "levels 2-3 are not computed for indels (their codons are not re-cut)",
            "seconds": round(time.time() - t0, 1), "seconds_by_part": {k: round(v, 1) for k, v in seconds.items()},
            "device": str(device), "threads": torch.get_num_threads()}
    _write(table, output, inputs["variants"], meta)
    log.info("effects %s: %d variants in %.1f s (%.1f variants/s); wrote %s and %s", reference, len(table),
             meta["seconds"], len(table) / max(meta["seconds"], 1e-9), output, vcf_path(output))
    return meta


def vcf_path(output: str) -> str:
    """The annotated VCF beside the table: variants.parquet -> variants.vcf.gz."""
    return str(Path(output).with_suffix("")) + ".vcf.gz"


def _with_checkpoint(cfg: dict, checkpoint: str | None) -> dict:
    return dict(cfg) | {"checkpoint": checkpoint}


def _gene_lookup(annotation):
    """(contig, start, end) -> names of the genes overlapping [start, end)."""
    if annotation is None:
        return lambda contig, start, end: []
    genes = annotation[annotation["feature"] == "gene"]
    by_contig = {c: (g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64),
                     np.where(g["gene_name"].fillna("").astype(str) != "", g["gene_name"].fillna("").astype(str),
                              g["gene_id"].astype(str)))
                 for c, g in genes.groupby("contig")}

    def at(contig, start, end):
        if contig not in by_contig:
            return []
        s, e, n = by_contig[contig]
        return list(n[(s < end) & (e > start)])
    return at


def _write(table: pd.DataFrame, output: str, source_vcf: str, meta: dict) -> None:
    """The parquet and the annotated VCF (+ .csi), each under a temporary name until complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    vcf = vcf_path(output)
    tmp_parquet = f"{output}.tmp-{os.getpid()}"
    tmp_vcf = f"{vcf}.tmp-{os.getpid()}.vcf.gz"
    try:
        arrow = pa.Table.from_pandas(table[list(COLUMNS)].reset_index(drop=True), preserve_index=False)
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               b"genoattn_effects": json.dumps(meta).encode()})
        pq.write_table(arrow, tmp_parquet)
        _write_vcf(table, source_vcf, tmp_vcf)
        os.replace(f"{tmp_vcf}.csi", f"{vcf}.csi")
        os.replace(tmp_vcf, vcf)
        os.replace(tmp_parquet, output)
    finally:
        for p in (tmp_parquet, tmp_vcf, f"{tmp_vcf}.csi"):
            if os.path.exists(p):
                os.unlink(p)


def _info_value(value, number: str) -> str | None:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    text = str(value)
    if not text:
        return None
    # INFO strings may not hold ';', '=', spaces or tabs; ',' separates values of Number=.
    return text.replace(";", "|").replace("=", ":").replace(" ", "_") if number == "." else text


def _write_vcf(table: pd.DataFrame, source_vcf: str, path: str) -> None:
    """The input VCF's records (genotypes kept) with the INFO fields added, bgzipped and CSI-indexed."""
    import pysam

    by_record = {k: g for k, g in table.groupby("record")}
    with pysam.VariantFile(source_vcf) as src:
        header = src.header.copy()
        for key, (_, number, typ, desc) in INFO_FIELDS.items():
            if key not in header.info:
                header.info.add(key, number, typ, desc)
        with pysam.VariantFile(path, "wz", header=header) as dst:
            for n, rec in enumerate(src):
                rec.translate(header)
                rows = by_record.get(n)
                if rows is not None:
                    n_alt = len(rec.alts or ())
                    for key, (col, number, _typ, _d) in INFO_FIELDS.items():
                        if number == "A":
                            vals = [None] * n_alt
                            for a, v in zip(rows["allele"], rows[col]):
                                vals[int(a) - 1] = None if not np.isfinite(v) else float(v)
                            if any(x is not None for x in vals):
                                rec.info[key] = tuple(vals)
                        else:
                            texts = [t for v in rows[col] if (t := _info_value(v, number))]
                            if texts:
                                rec.info[key] = tuple(",".join(texts).split(","))
                dst.write(rec)
    pysam.tabix_index(path, preset="vcf", csi=True, force=True)
