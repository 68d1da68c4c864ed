"""A variant's change of the level-2 to level-5 embeddings, from the change of its level-1 window.

Input contract
--------------
The stores of the reference (level-1 to level-5 of the variant's contig, level 5 of the genome) and the
level modules built from the same config and checkpoints that wrote them. A variant enters as the
change of its level-1 window: the per-base outputs of the alternative window minus those of the
reference window (:func:`genoattn.effects.sequence.window_passes`), for every base of the window (attention
spreads one base's change over the whole window), and its new letter.

What changes (every change is ``alt - ref`` of recomputed embeddings; the stored values are the reference)
---------------------------------------------------------------------------------------------------------
* Level 2: the codons of every exon with a base in the window, recomputed with the changed base embeddings
  and letters (attention runs per exon, so other exons do not change). ``codon``: the annotated-frame codon
  that holds the variant, in the variant's transcript; ``exon``: the mean of that exon's codons.
* Level 3: every transcript with such an exon, recomputed with its changed codons and UTR bases: the
  variant's exon and transcript, and its gene (mean of the gene's transcripts).
* Level 4: the contig's bins, after the window's share of each bin's pooled level-1 features (and the
  changed genes' share of the gene context) changed: graph attention spreads it along Hi-C edges.
* Level 5: every bin of the genome, after the contig's level-4 embeddings changed.

SNVs go through every level; an indel changes its level-1 window and from there levels 4-5 (its codons
are not re-cut, so levels 2-3 are NaN for indels). Sizes are L2 norms of the change.
"""

from __future__ import annotations

import numpy as np
import torch

from genoattn import alphabet
from genoattn import transcripts as tx


class CodingLevels:
    """Levels 2 and 3 of one contig, ready to recompute the exons and transcripts a window touches."""

    def __init__(self, annotation, contig: str, level1_path: str, level2_path: str, level3_path: str | None,
                 levels: dict, device, backend=None, source: str = "annotation"):
        from genoattn.levels.codon import CodonAttention, Level1Bases, load_model_inputs, transcripts_with_bases
        from genoattn.levels.exon import ExonAttention, Level2Codons
        from genoattn.model import build_module

        ann_cfg = levels["annotation"]
        model = load_model_inputs(annotation, contig, ann_cfg, source)
        self.bases = Level1Bases(level1_path)
        qc, skipped = {}, {}
        self.transcripts = transcripts_with_bases(model.transcripts, self.bases, qc, skipped, "skip", source)
        self.exons = tx.exon_table(self.transcripts)
        self.codons = tx.codon_table(self.transcripts, self.exons)
        c2 = levels["level2"]
        self.level2, self.identity2 = build_module(
            lambda: CodonAttention(self.bases.dim, int(c2["dim"]), int(c2["heads"]), int(c2["layers"])),
            "level2", c2["checkpoint"], int(c2["seed"]))
        self.level2.to(device)
        self.level3 = None
        if level3_path:
            c3 = levels["level3"]
            self.stored_codons = Level2Codons(level2_path)
            self.level3, self.identity3 = build_module(
                lambda: ExonAttention(self.stored_codons.dim, self.bases.dim, int(c3["dim"]), int(c3["heads"]),
                                      int(c3["layers"]), int(c3["max_rank"])), "level3", c3["checkpoint"],
                int(c3["seed"]))
            self.level3.to(device)
        self.device, self.backend = device, backend
        self._ref_codons: dict[int, np.ndarray] = {}
        self._ref_transcripts: dict[int, tuple] = {}
        self.tx_index = {t.transcript_id: i for i, t in enumerate(self.transcripts)}
        self.gene_transcripts: dict[str, list[int]] = {}
        for i, t in enumerate(self.transcripts):
            self.gene_transcripts.setdefault(t.gene_id, []).append(i)
        order = np.argsort(self.exons.start, kind="stable")
        self._exon_by_start = order
        self._exon_starts = self.exons.start[order]
        self._max_len = int((self.exons.end - self.exons.start).max()) if len(self.exons) else 0

    def exons_in(self, lo: int, hi: int) -> np.ndarray:
        """Indices of the exons overlapping [lo, hi)."""
        a = int(np.searchsorted(self._exon_starts, lo - self._max_len, side="left"))
        b = int(np.searchsorted(self._exon_starts, hi, side="left"))
        cand = self._exon_by_start[a:b]
        return np.sort(cand[(self.exons.end[cand] > lo) & (self.exons.start[cand] < hi)])

    def _base_change(self, positions: np.ndarray, lo: int, delta: np.ndarray) -> np.ndarray:
        """Per-base change [n, dim] at genomic ``positions`` (zero outside the window [lo, lo + W))."""
        off = positions - lo
        inside = (off >= 0) & (off < len(delta))
        out = np.zeros((len(positions), delta.shape[1]), np.float32)
        out[inside] = delta[off[inside]]
        return out

    @torch.no_grad()
    def _codon_outputs(self, exon: int, lo: int, delta: np.ndarray, variant_pos: int, alt_token: int):
        from genoattn.levels.codon import codon_inputs, strand_composition

        ca, cb = int(self.codons.exon_offset[exon]), int(self.codons.exon_offset[exon + 1])
        sel = slice(ca, cb)
        emb, comp = codon_inputs(self.codons, sel, self.bases)
        bpos = self.codons.base_position[sel]
        emb_alt = emb + self._base_change(bpos.reshape(-1), lo, delta).reshape(emb.shape)
        comp_alt = comp.copy()
        hit = bpos == variant_pos
        if hit.any():
            minus = np.repeat(self.codons.strand_minus[sel], 3).reshape(bpos.shape)[hit]
            comp_alt[hit] = strand_composition(np.full(int(hit.sum()), alt_token, np.uint8), minus)
        dev = self.device
        frame = torch.as_tensor(self.codons.frame[sel], device=dev)
        offset = torch.as_tensor(self.codons.cds_offset[sel], device=dev)
        cu = torch.tensor([0, cb - ca], dtype=torch.int64, device=dev)

        def run(e, c):
            return self.level2(torch.as_tensor(e, device=dev), torch.as_tensor(c, device=dev, dtype=torch.float32),
                               frame, offset, cu, backend=self.backend).float().cpu().numpy()
        if exon not in self._ref_codons:       # the reference pass of an exon serves all its variants
            self._ref_codons[exon] = run(emb, comp)
        return self._ref_codons[exon], run(emb_alt, comp_alt), (ca, cb)

    @torch.no_grad()
    def changes(self, transcript_id: str | None, variant_pos: int, alt: str, lo: int, delta: np.ndarray) -> dict:
        """Sizes of the level-2/3 changes of an SNV at ``variant_pos`` whose window [lo, lo + W) changed by
        ``delta`` [W, dim]; ``transcript_id``: the variant's transcript (its codon, exon and gene)."""
        out = {k: np.nan for k in ("level2_codon_change", "level2_exon_change", "level3_exon_change",
                                   "level3_transcript_change", "level3_gene_change")}
        gene_delta: dict[str, np.ndarray] = {}
        affected = [int(i) for i in self.exons_in(lo, lo + len(delta))]
        if not affected:
            return out | {"gene_deltas": gene_delta}
        alt_token = int(alphabet.encode(alt)[0][0])
        codon_delta: dict[int, np.ndarray] = {}
        t_var = self.tx_index.get(transcript_id) if transcript_id else None
        for i in affected:
            if self.codons.exon_offset[i + 1] == self.codons.exon_offset[i]:
                continue
            ref, alt_out, (ca, cb) = self._codon_outputs(i, lo, delta, variant_pos, alt_token)
            codon_delta[i] = alt_out - ref
            if t_var is not None and self.exons.transcript_index[i] == t_var:
                bpos = self.codons.base_position[ca:cb]
                mine = np.flatnonzero((self.codons.frame[ca:cb] == 0) & (bpos == variant_pos).any(1))
                if len(mine):
                    out["level2_codon_change"] = float(np.linalg.norm(codon_delta[i][mine[0]]))
                    out["level2_exon_change"] = float(np.linalg.norm(codon_delta[i].mean(0)))
        if self.level3 is None:
            return out | {"gene_deltas": gene_delta}
        for ti in sorted({int(self.exons.transcript_index[i]) for i in affected}):
            d_exon, d_tx = self._transcript_change(ti, codon_delta, lo, delta, variant_pos, alt_token)
            t = self.transcripts[ti]
            gene_delta[t.gene_id] = gene_delta.get(t.gene_id, 0) + d_tx / len(self.gene_transcripts[t.gene_id])
            if ti == t_var:
                ea = int(self.exons.transcript_offset[ti])
                here = [i - ea for i in affected if self.exons.transcript_index[i] == ti
                        and self.exons.start[i] <= variant_pos < self.exons.end[i]]
                if here:
                    out["level3_exon_change"] = float(np.linalg.norm(d_exon[here[0]]))
                out["level3_transcript_change"] = float(np.linalg.norm(d_tx))
        if t_var is not None and self.transcripts[t_var].gene_id in gene_delta:
            out["level3_gene_change"] = float(np.linalg.norm(gene_delta[self.transcripts[t_var].gene_id]))
        return out | {"gene_deltas": gene_delta}

    def _transcript_change(self, ti: int, codon_delta: dict, lo: int, delta: np.ndarray, variant_pos: int,
                           alt_token: int):
        from genoattn.levels.codon import strand_composition
        from genoattn.levels.exon import exon_inputs

        ref = exon_inputs(self.exons, self.stored_codons, self.bases, (ti, ti + 1), self.device)
        alt = dict(ref)
        ea, eb = int(self.exons.transcript_offset[ti]), int(self.exons.transcript_offset[ti + 1])
        codon = ref["codon_emb"].clone()
        base_offset = int(self.stored_codons.exon_offset[ea])
        for i, d in codon_delta.items():
            if ea <= i < eb:
                a = int(self.stored_codons.exon_offset[i]) - base_offset
                codon[a:a + len(d)] += torch.as_tensor(d, device=codon.device)
        alt["codon_emb"] = codon
        pos = np.concatenate([tx.utr_positions(self.exons, i) for i in range(ea, eb)])
        if len(pos):
            alt["base_emb"] = ref["base_emb"] + torch.as_tensor(self._base_change(pos, lo, delta), device=self.device)
            hit = pos == variant_pos
            if hit.any():
                comp = ref["base_comp"].clone()
                minus = np.full(int(hit.sum()), self.exons.strand[ea] == "-")
                comp[torch.as_tensor(hit, device=comp.device)] = torch.as_tensor(
                    strand_composition(np.full(int(hit.sum()), alt_token, np.uint8), minus), dtype=comp.dtype,
                    device=comp.device)
                alt["base_comp"] = comp
        if ti not in self._ref_transcripts:
            self._ref_transcripts[ti] = self.level3(**ref, backend=self.backend)
        h_ref, t_ref = self._ref_transcripts[ti]
        h_alt, t_alt = self.level3(**alt, backend=self.backend)
        return (h_alt - h_ref).float().cpu().numpy(), (t_alt - t_ref)[0].float().cpu().numpy()


class HicLevels:
    """Levels 4 (this contig) and 5 (the genome) ready to recompute after a change of level-1 windows."""

    def __init__(self, contig: str, graph, genome, level1_path: str, level3_path: str | None, top_bins: int):
        from genoattn.io.store import open_group

        self.contig, self.graph, self.genome, self.top = contig, graph, genome, top_bins
        d = graph.data
        self.wmat = d["window_matrix"].tocsc()
        self.gmat = d["gene_matrix"].tocsc() if d["gene_matrix"] is not None else None
        self.gene_index = {}
        self.gene_names: list[str] = []
        if self.gmat is not None and level3_path:
            g3 = open_group(level3_path)
            ids = [str(x) for x in g3["gene_id"][:]]
            self.gene_index = {g: i for i, g in enumerate(ids)}
        self.bin_start, self.bin_end = d["bins"]["start"], d["bins"]["end"]
        self.base4 = graph.embed()
        self.ci = genome.contigs.index(contig) if genome is not None and contig in genome.contigs else None
        self.base5 = genome.embed() if self.ci is not None else None

    @staticmethod
    def _bin_label(chrom: str, start: int, end: int, change: float, names: list[str]) -> str:
        """chrI:10001-20000(GENE1,GENE2)=0.53 (1-based closed bin, its genes, the size of its change)."""
        g = "(" + ",".join(names[:4]) + (",..." if len(names) > 4 else "") + ")" if names else ""
        return f"{chrom}:{start + 1}-{end}{g}={change:.4g}"

    def node_of(self, pos: int) -> int:
        """The node (bin, or regulatory element) holding ``pos``; the nearest one when none holds it."""
        inside = np.flatnonzero((self.bin_start <= pos) & (self.bin_end > pos))
        if len(inside):
            return int(inside[0])
        return int(np.argmin(np.abs((self.bin_start + self.bin_end) / 2 - pos)))

    @torch.no_grad()
    def changes(self, window_index: int, window_delta: np.ndarray, gene_deltas: dict, variant_pos: int,
                genes_at) -> dict:
        """Sizes of the level-4/5 changes; ``genes_at(contig, start, end)``: gene names in a bin."""
        out = {"level4_bin": "", "level4_bin_change": np.nan, "level4_top_bins": "",
               "level5_bin_change": np.nan, "level5_top_bins": ""}
        col = self.wmat[:, window_index]
        wf = self.graph.data["window_features"].copy()
        rows, share = col.indices, col.data
        wf[rows] += share[:, None].astype(np.float32) * window_delta[None, :].astype(np.float32)
        gf = None
        if self.gmat is not None and gene_deltas:
            gf = self.graph.data["gene_features"].copy()
            for gid, d in gene_deltas.items():
                gi = self.gene_index.get(gid)
                if gi is None:
                    continue
                gcol = self.gmat[:, gi]
                gf[gcol.indices] += gcol.data[:, None].astype(np.float32) * d[None, :].astype(np.float32)
        d4 = self.graph.embed(wf, gf) - self.base4
        size4 = np.linalg.norm(d4, axis=1)
        b = self.node_of(variant_pos)
        out["level4_bin"] = f"{self.contig}:{self.bin_start[b] + 1}-{self.bin_end[b]}"
        out["level4_bin_change"] = float(size4[b])
        top = np.argsort(-size4, kind="stable")[:self.top]
        out["level4_top_bins"] = ";".join(
            self._bin_label(self.contig, int(self.bin_start[i]), int(self.bin_end[i]), float(size4[i]),
                            genes_at(self.contig, int(self.bin_start[i]), int(self.bin_end[i])))
            for i in top if size4[i] > 0)
        if self.base5 is not None:
            emb = list(self.genome.emb)
            emb[self.ci] = self.genome.emb[self.ci] + d4
            size5 = np.linalg.norm(self.genome.embed(emb) - self.base5, axis=1)
            off = int(self.genome.offsets[self.ci])
            out["level5_bin_change"] = float(size5[off + b])
            top = np.argsort(-size5, kind="stable")[:self.top]
            labels = []
            for i in top:
                if size5[i] <= 0:
                    continue
                c = int(np.searchsorted(self.genome.offsets, i, side="right") - 1)
                j = i - int(self.genome.offsets[c])
                s, e = int(self.genome.start[c][j]), int(self.genome.end[c][j])
                labels.append(self._bin_label(self.genome.contigs[c], s, e, float(size5[i]),
                                              genes_at(self.genome.contigs[c], s, e)))
            out["level5_top_bins"] = ";".join(labels)
        return out
