"""Level 6 (cohort): local-global attention over each individual's variants, sharded by samples.

Tokens. One token per kept variant of the genotypes store, per individual::

    token = genotype_embedding[code]                   (per individual)
          + allele_embedding[ref x alt SNV class, 16 = other]
          + position_projection(Fourier features of the 0-based bp position, wavelengths 10 bp .. 100 Mb)
          + site_embedding[bucket]                     (with ``site_buckets`` > 0, see below)
          + context                                    (see below)

    code: 0/1/2 = number of non-reference alleles of a diploid call (capped at 2 for polyploids),
          3 = missing (any allele of the call missing), 4/5 = haploid call ref/alt.

Sites. With ``site_buckets`` > 0 each site also gets a learned vector, found by hashing
``contig:pos:ref:alt`` (CRC32, stable across runs, machines and cohorts) into that many buckets: what
an imputation model needs to learn per-site allele frequencies and LD. Sites of another cohort reuse
the vectors of the training cohort's sites they share, and get the (untrained) vector of their bucket
otherwise.

Context. When the cohort names a ``reference`` and ``results/{reference}/level5.zarr`` exists (arrays
``embedding`` [bin, feature] with coords ``chrom``/``start``/``end``), a variant inside a bin gets
``context_projection(level5 embedding of its bin)``. Otherwise (no reference, no level-5 store, or a
variant outside every bin) it gets the learned ``no_context`` vector: the documented fallback.

Attention. ``n_global`` learned global tokens are prepended; every layer is pre-norm
attention + MLP with :func:`genoattn.kernels.local_global_attention` (local window ``window``
variants; windows never cross a contig, or an LD block with ``windows: ld_blocks``). Long
sequences are processed in query blocks (exactly the same result, bounded memory): each block
of local queries sees the global tokens and the keys within window//2 of it; the global
queries attend to everything with dense attention.

Outputs. ``sample_embedding`` = final-norm mean of the global tokens' outputs; optional
``block_embedding`` = mean of the variant tokens' outputs inside each LD block.

Samples are independent: nothing mixes individuals (no batch statistics), so a shard's embeddings
equal those of an unsharded run (tested).
"""

from __future__ import annotations

import logging
import math
import time
import zlib

import numpy as np
import torch
from torch import nn

log = logging.getLogger("genoattn.level6")

N_GT_CODES = 6
MISSING_CODE = 3
N_ALLELE_CLASSES = 17
N_FOURIER = 16
_BASE_INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}



# -- features ---------------------------------------------------------------------------------------
def genotype_codes(gt: np.ndarray) -> np.ndarray:
    """call_genotype [..., ploidy] int8 -> token codes uint8 [...] (see module docstring)."""
    real = gt != -2
    missing = ((gt == -1) & real).any(axis=-1)
    n_real = real.sum(axis=-1)
    alt = ((gt > 0) & real).sum(axis=-1)
    code = np.minimum(alt, 2).astype(np.uint8)
    code = np.where(n_real == 1, np.where(alt > 0, 5, 4), code)
    code = np.where(missing | (n_real == 0), MISSING_CODE, code)
    return code.astype(np.uint8)


def allele_classes(alleles: np.ndarray) -> np.ndarray:
    """variant_allele [V, A] str -> SNV class ref*4+alt (0..15), 16 for anything else."""
    out = np.full(alleles.shape[0], 16, np.int64)
    for i, row in enumerate(alleles):
        ref, alt = str(row[0]).upper(), str(row[1]).upper() if len(row) > 1 else ""
        if ref in _BASE_INDEX and alt in _BASE_INDEX and (len(row) < 3 or str(row[2]) == ""):
            out[i] = _BASE_INDEX[ref] * 4 + _BASE_INDEX[alt]
    return out


def fourier_features(pos0: np.ndarray, n: int = N_FOURIER) -> torch.Tensor:
    lam = 10.0 * (1e7) ** (np.arange(n) / max(n - 1, 1))  # 10 bp .. 100 Mb
    ang = 2 * np.pi * (pos0.astype(np.float64)[:, None] % lam[None, :]) / lam[None, :]
    return torch.from_numpy(np.concatenate([np.sin(ang), np.cos(ang)], axis=1).astype(np.float32))


def site_buckets(contig_names: np.ndarray, pos0: np.ndarray, alleles: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket [V] int64 of each site: CRC32 of 'contig:pos:ref:alt' (1-based pos, VCF alleles) mod ``buckets``."""
    out = np.empty(len(pos0), np.int64)
    for i, (c, p, a) in enumerate(zip(contig_names, pos0, alleles)):
        key = f"{c}:{int(p) + 1}:{':'.join(str(x) for x in a if str(x))}"
        out[i] = zlib.crc32(key.encode()) % buckets
    return out


class Level5Context:
    """Lookup of each variant's level-5 bin embedding (store contract in the module docstring)."""

    def __init__(self, path: str):
        from genoattn.io.store import open_group

        g = open_group(path)
        self.path = path
        self.embedding = g["embedding"]
        self.dim = int(self.embedding.shape[1])
        chrom = np.array([str(c) for c in g["chrom"][:]], dtype=object)
        start = np.asarray(g["start"][:], np.int64)
        end = np.asarray(g["end"][:], np.int64)
        self.by_chrom = {}
        for c in dict.fromkeys(chrom):
            idx = np.flatnonzero(chrom == c)
            order = np.argsort(start[idx], kind="stable")
            idx = idx[order]
            self.by_chrom[c] = (idx, start[idx], end[idx])

    def bins(self, chrom_names: np.ndarray, pos0: np.ndarray) -> np.ndarray:
        """Bin row of each variant, -1 when no bin holds it."""
        out = np.full(pos0.shape[0], -1, np.int64)
        for c in dict.fromkeys(chrom_names.tolist()):
            sel = np.flatnonzero(chrom_names == c)
            if c not in self.by_chrom:
                continue
            idx, st, en = self.by_chrom[c]
            j = np.searchsorted(st, pos0[sel], side="right") - 1
            ok = (j >= 0) & (pos0[sel] < en[np.clip(j, 0, None)])
            out[sel[ok]] = idx[j[ok]]
        return out


# -- module -----------------------------------------------------------------------------------------------
def local_global(q, k, v, window: int, n_global: int, segment_ids, query_block: int = 1024):
    """Local-global attention through genoattn.kernels in query blocks (same result, bounded memory).

    q, k, v [B, H, G+N, D] with the G global tokens first; segment_ids [N] for the local tokens.
    """
    from genoattn import kernels

    G = n_global
    N = q.shape[2] - G
    half = window // 2
    seg_full = torch.cat([torch.full((G,), -1, dtype=segment_ids.dtype, device=segment_ids.device), segment_ids])
    # the cpu and triton paths are banded (memory O(N * window)); the reference path builds an N x N mask
    if N <= query_block or kernels.resolve(None, q.device) != "reference":
        return kernels.local_global_attention(q, k, v, window, G, seg_full)
    outs = [kernels.attention(q[:, :, :G], k, v)] if G else []
    for s in range(0, N, query_block):
        e = min(N, s + query_block)
        ks, ke = max(0, s - half), min(N, e + half)
        idx = torch.cat([torch.arange(G, device=q.device), G + torch.arange(ks, ke, device=q.device)])
        sub = kernels.local_global_attention(q[:, :, idx], k[:, :, idx], v[:, :, idx], window, G,
                                             seg_full[idx])
        outs.append(sub[:, :, G + (s - ks): G + (e - ks)])
    return torch.cat(outs, dim=2)


class CohortLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x, window, n_global, segment_ids, query_block):
        B, T, C = x.shape
        H = self.heads
        qkv = self.qkv(self.norm1(x)).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        a = local_global(qkv[0], qkv[1], qkv[2], window, n_global, segment_ids, query_block)
        x = x + self.out(a.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.norm2(x))


class CohortModel(nn.Module):
    """Level-6 module; see the module docstring for tokens, context and outputs."""

    def __init__(self, dim: int = 256, heads: int = 16, window: int = 200, n_global: int = 17, layers: int = 1,
                 mlp_ratio: int = 4, context_dim: int = 0, site_buckets: int = 0):
        super().__init__()
        self.dim, self.window, self.n_global = dim, window, n_global
        self.genotype = nn.Embedding(N_GT_CODES, dim)
        self.allele = nn.Embedding(N_ALLELE_CLASSES, dim)
        self.position = nn.Linear(2 * N_FOURIER, dim)
        self.site = None
        if site_buckets:
            self.site = nn.Embedding(site_buckets, dim)
            nn.init.normal_(self.site.weight, std=0.02)
        self.context = nn.Linear(context_dim, dim) if context_dim else None
        self.no_context = nn.Parameter(torch.randn(dim) * 0.02)
        self.global_tokens = nn.Parameter(torch.randn(n_global, dim) * 0.02)
        self.layers = nn.ModuleList(CohortLayer(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def variant_tokens(self, allele_class, fourier, context=None, has_context=None, site=None):
        """Per-variant part of the tokens [V, dim] (the same for every individual); the arguments are those
        :func:`variant_inputs` returns."""
        base = self.allele(allele_class) + self.position(fourier)
        if self.site is not None:
            base = base + self.site(site)
        ctx = self.no_context.expand_as(base)
        if self.context is not None and context is not None:
            ctx = torch.where(has_context[:, None], self.context(context), ctx)
        return base + ctx

    def forward(self, codes, variant_base, segment_ids, query_block: int = 1024):
        """codes [B, V] long; variant_base [V, dim]; segment_ids [V] -> (globals [B, G, dim], tokens [B, V, dim])."""
        B = codes.shape[0]
        x = self.genotype(codes) + variant_base[None]
        x = torch.cat([self.global_tokens[None].expand(B, -1, -1), x], dim=1)
        for layer in self.layers:
            x = layer(x, self.window, self.n_global, segment_ids, query_block)
        x = self.norm(x)
        return x[:, :self.n_global], x[:, self.n_global:]


def _segments(g, ld, windows: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    contig = np.asarray(g["variant_contig"][:], np.int64)
    bs = np.asarray(ld["ld_block_start"][:], np.int64)
    be = np.asarray(ld["ld_block_end"][:], np.int64)
    block_of = np.repeat(np.arange(len(bs)), be - bs)
    if block_of.shape[0] != contig.shape[0]:
        raise ValueError("LD blocks do not cover the genotypes' variants: the ld_blocks store is stale; "
                         "rerun the ld_blocks rule (snakemake --forcerun ld_blocks)")
    seg = block_of if windows == "ld_blocks" else contig
    return seg, bs, be


def segment_ids(g, ld_blocks: str | None, windows: str) -> np.ndarray:
    """Segment [V] of each variant of store ``g`` (local windows never cross one): its contig, or its LD
    block with ``windows: ld_blocks`` (which needs the cohort's ld_blocks store)."""
    if windows != "ld_blocks":
        return np.asarray(g["variant_contig"][:], np.int64)
    if ld_blocks is None:
        raise ValueError("levels.level6.windows is ld_blocks but no ld_blocks store was given")
    from genoattn.io.store import open_group

    return _segments(g, open_group(ld_blocks), windows)[0]


def build_model(opts: dict, context_dim: int):
    from genoattn.model import build_module

    return build_module(lambda: CohortModel(opts["dim"], opts["heads"], opts["window"], opts["n_global"],
                                            opts["layers"], opts["mlp_ratio"], context_dim,
                                            opts["site_buckets"]),
                        "level6", opts["checkpoint"], int(opts["seed"]))


def variant_inputs(g, opts: dict, ctx: Level5Context | None = None, start: int = 0, stop: int | None = None,
                   device="cpu") -> dict:
    """The per-variant inputs of variants [start, stop) of a genotypes store ``g``: the keyword arguments
    of :meth:`CohortModel.variant_tokens` (tensors on ``device``) and ``n_context`` (variants inside a
    level-5 bin)."""
    stop = int(g["variant_position"].shape[0]) if stop is None else stop
    pos0 = np.asarray(g["variant_position"][start:stop], np.int64) - 1
    alleles = np.asarray(g["variant_allele"][start:stop])
    names = np.array([str(c) for c in g["contig_id"][:]], dtype=object)[np.asarray(g["variant_contig"][start:stop],
                                                                                    np.int64)]
    out = {"allele_class": torch.from_numpy(allele_classes(alleles)).to(device),
           "fourier": fourier_features(pos0).to(device), "context": None, "has_context": None, "site": None,
           "n_context": 0}
    if opts["site_buckets"]:
        out["site"] = torch.from_numpy(site_buckets(names, pos0, alleles, int(opts["site_buckets"]))).to(device)
    if ctx is not None:
        rows = ctx.bins(names, pos0)
        has = rows >= 0
        emb = np.zeros((stop - start, ctx.dim), np.float32)
        if has.any():
            uniq, inv = np.unique(rows[has], return_inverse=True)
            emb[has] = np.asarray(ctx.embedding.get_orthogonal_selection((uniq, slice(None))), np.float32)[inv]
        out.update(context=torch.from_numpy(emb).to(device), has_context=torch.from_numpy(has).to(device),
                   n_context=int(has.sum()))
    return out


def variant_base(model: CohortModel, g, opts: dict, ctx: Level5Context | None, device,
                 step: int = 65536) -> tuple[torch.Tensor, int]:
    """The per-variant part of every token [V, dim] of store ``g`` (in steps of ``step`` variants), and the
    number of variants with level-5 context."""
    V = int(g["variant_position"].shape[0])
    parts, n_ctx = [], 0
    for s in range(0, V, step):
        inp = variant_inputs(g, opts, ctx, s, min(V, s + step), device)
        n_ctx += inp.pop("n_context")
        parts.append(model.variant_tokens(**inp))
    return (torch.cat(parts) if parts else torch.zeros(0, model.dim, device=device)), n_ctx


def embed_samples(genotypes: str, ld_blocks: str, sample_range: tuple[int, int], opts: dict,
                  level5: str | None = None, device: str = "auto"):
    """Embeddings of samples [start, stop) of the genotypes store -> dict of numpy arrays + identity."""
    from genoattn.io.store import open_group
    from genoattn.model import pick_device

    g = open_group(genotypes)
    ld = open_group(ld_blocks)
    V = int(g["variant_position"].shape[0])
    seg, bs, be = _segments(g, ld, opts["windows"])
    ctx = Level5Context(level5) if level5 else None
    model, identity = build_model(opts, ctx.dim if ctx else 0)
    dev = pick_device(device)
    model.to(dev)
    with torch.no_grad():
        base, n_ctx = variant_base(model, g, opts, ctx, dev)
        seg_t = torch.from_numpy(seg).to(dev)
        a, b = sample_range
        gt = np.asarray(g["call_genotype"][:, a:b])                      # [V, n, P] int8: bounded by the shard
        codes = torch.from_numpy(genotype_codes(gt).T.copy())            # [n, V]
        del gt
        n = b - a
        sample_emb = np.zeros((n, opts["dim"]), np.float32)
        block_emb = np.zeros((n, len(bs), opts["dim"]), np.float32) if opts["block_embedding"] else None
        block_of = torch.from_numpy(np.repeat(np.arange(len(bs)), be - bs)).to(dev)
        counts = torch.from_numpy((be - bs).astype(np.float32)).to(dev)
        t0 = time.time()
        bsz = int(opts["batch_size"])
        for i in range(0, n, bsz):
            j = min(n, i + bsz)
            glob, tok = model(codes[i:j].long().to(dev), base, seg_t, int(opts["query_block"]))
            sample_emb[i:j] = glob.mean(dim=1).float().cpu().numpy()
            if block_emb is not None:
                acc = torch.zeros(j - i, len(bs), opts["dim"], device=dev, dtype=tok.dtype)
                acc.index_add_(1, block_of, tok)
                block_emb[i:j] = (acc / counts[None, :, None]).float().cpu().numpy()
        rate = n / max(time.time() - t0, 1e-9)
    log.info("level6: %d samples x %d variants in %.1f s (%.2f individuals/s), %d/%d variants with level-5 context",
             n, V, time.time() - t0, rate, n_ctx, V)
    sample_ids = np.asarray(g["sample_id"][a:b]).astype(object)
    info = {"n_variants": V, "variants_with_context": n_ctx, "context": level5 or "none (learned no_context)",
            "individuals_per_s": rate}
    return {"sample_id": sample_ids, "sample_embedding": sample_emb, "block_embedding": block_emb}, identity, info


def _level_config(opts: dict) -> dict:
    """The levels.level6 keys a store records (those the job read)."""
    return dict(opts)


def run_shard(genotypes: str, ld_blocks: str, out: str, shard: int, opts: dict, level5: str | None = None,
              device: str = "auto", cohort: str | None = None) -> None:
    """Write results/{cohort}/level6_shards/{shard}.zarr for samples [shard*sps, (shard+1)*sps)."""
    from genoattn.io.samples import shard_slices
    from genoattn.io.store import atomic_store, mark_coordinates, open_group, upstream_inputs
    from genoattn.kernels.dispatch import describe
    from genoattn.model import pick_device

    S = int(open_group(genotypes)["sample_id"].shape[0])
    slices = shard_slices(S, int(opts["samples_per_shard"]))
    if not 0 <= shard < len(slices):
        raise ValueError(f"shard {shard} does not exist: {genotypes} has {S} samples = {len(slices)} shard(s) of "
                         f"levels.level6.samples_per_shard={opts['samples_per_shard']}")
    sl = slices[shard]
    res, identity, info = embed_samples(genotypes, ld_blocks, (sl.start, sl.stop), opts, level5, device)
    attrs = {"level": "level6_shard", "cohort": cohort, "shard": shard, "sample_start": sl.start,
             "sample_stop": sl.stop, "model": identity, "kernels": describe(pick_device(device)),
             "config": _level_config(opts), "info": info,
             "inputs": upstream_inputs([genotypes, level5]), "genotypes": genotypes, "level5": level5}
    with atomic_store(out, attrs=attrs) as w:
        w.write("sample_id", res["sample_id"], dims=("samples",))
        w.write("sample_embedding", res["sample_embedding"], dims=("samples", "feature"))
        if res["block_embedding"] is not None:
            w.write("block_embedding", res["block_embedding"], dims=("samples", "ld_block", "feature"))
        mark_coordinates(w, "sample_id")


def gather(shards: list[str], genotypes: str, ld_blocks: str, out: str, opts: dict,
           cohort: str | None = None, covariates=None) -> None:
    """Concatenate the shard stores (in shard order) into results/{cohort}/level6.zarr, one shard at a time."""
    from genoattn.io.store import atomic_store, mark_coordinates, open_group, upstream_inputs

    g = open_group(genotypes)
    ld = open_group(ld_blocks)
    sample_ids = np.array([str(s) for s in g["sample_id"][:]], dtype=object)
    S, D = len(sample_ids), int(opts["dim"])
    first = open_group(shards[0])
    identity = dict(first.attrs["model"])
    nb = int(ld["ld_block_start"].shape[0])
    has_block = "block_embedding" in first
    attrs = {"level": "level6", "cohort": cohort, "model": identity, "kernels": dict(first.attrs.get("kernels", {})),
             "config": _level_config(opts),
             "inputs": upstream_inputs([genotypes, *shards]), "genotypes": genotypes, "ld_blocks": ld_blocks,
             "n_shards": len(shards), "level5": first.attrs.get("level5"), "info": dict(first.attrs.get("info", {})),
             "sample_embedding": "final-norm mean of the global tokens' outputs",
             "block_embedding": "mean of the variant tokens' outputs inside each LD block" if has_block else None,
             "ld_block_ranges": "ld_block_start/ld_block_end: variant index ranges [start, end) of genotypes.zarr; "
                                "ld_block_bp_start/_end: 0-based half-open bp"}
    with atomic_store(out, attrs=attrs) as w:
        se = w.create("sample_embedding", (S, D), np.float32, ("samples", "feature"))
        be = w.create("block_embedding", (S, nb, D), np.float32, ("samples", "ld_block", "feature"),
                      chunks=(max(1, int(opts["samples_per_shard"])), nb, D)) if has_block else None
        pos = 0
        for k, path in enumerate(shards):
            sg = open_group(path)
            if sg.attrs.get("model", {}) != identity:
                raise ValueError(f"shard {path} was made with other weights than shard {shards[0]}; rerun it")
            ids = np.array([str(s) for s in sg["sample_id"][:]], dtype=object)
            if not np.array_equal(ids, sample_ids[pos:pos + len(ids)]):
                raise ValueError(f"shard {path} holds samples {ids[:3]}... but {genotypes} expects "
                                 f"{sample_ids[pos:pos + 3]}... at {pos}: the shard is stale, rerun it")
            se[pos:pos + len(ids)] = np.asarray(sg["sample_embedding"][:])
            if be is not None:
                be[pos:pos + len(ids)] = np.asarray(sg["block_embedding"][:])
            pos += len(ids)
        if pos != S:
            raise ValueError(f"shards hold {pos} samples, {genotypes} has {S}: a shard is missing")
        w.write("sample_id", sample_ids, dims=("samples",))
        coords = ["sample_id", "ld_block_chrom", "ld_block_bp_start", "ld_block_bp_end"]
        for name in ("ld_block_start", "ld_block_end", "ld_block_chrom", "ld_block_bp_start", "ld_block_bp_end",
                     "ld_block_n_variants"):
            data = ld[name][:]
            if name == "ld_block_chrom":
                data = np.array([str(x) for x in data], dtype=object)
            w.write(name, np.asarray(data), dims=("ld_block",))
        if covariates is not None and len(covariates.columns):
            for col in covariates.columns:
                vals = covariates[col].to_numpy()
                if vals.dtype.kind not in "fiub":
                    vals = np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                                     for v in vals], dtype=object)
                w.write(f"covariate_{col}", vals, dims=("samples",))
                coords.append(f"covariate_{col}")
        mark_coordinates(w, *coords)


# -- what the rules call -------------------------------------------------------------------------------
def run_genotypes(config: dict, cohort: str, out: str, region: str | None = None) -> dict:
    """results/{cohort}/genotypes.zarr from the cohort's VCF/BCF, the sample sheet and the filters;
    with ``region``, one piece of a split conversion (results/{cohort}/genotypes_parts/), which may be
    empty."""
    from genoattn.contigs import canonical_fasta_names, select_contigs
    from genoattn.io.samples import select_samples
    from genoattn.io.vcf import convert_vcf

    c = config["cohorts"][cohort]
    samples = select_samples(config, cohort)
    ref_names = selected = lengths = None
    if c["reference"]:
        from genoattn.io.fasta import fasta_index

        r = config["references"][c["reference"]]
        recs = fasta_index(r["fasta"])
        ref_names = canonical_fasta_names([x.name for x in recs], r["contig_aliases"])
        lengths = dict(zip(ref_names, (x.length for x in recs)))
        selected = select_contigs(ref_names, r["include"], r["exclude"])
    cfg = {"cohort": cohort, **c, "samples_sheet": config.get("samples"), "n_samples": len(samples)}
    return convert_vcf(c["vcf"], out, samples, filters=c["filters"], reference_names=ref_names,
                       selected_contigs=selected, reference_lengths=lengths,
                       contig_aliases=c["contig_aliases"], chr_prefix=c["chr_prefix"],
                       regions=[region] if region else c["regions"], ploidy=int(c["ploidy"]),
                       chunk_variants=c["chunk_variants"], chunk_samples=int(c["chunk_samples"]),
                       config=cfg, extra_inputs=[config.get("samples")], key=f"cohorts.{cohort}",
                       allow_empty=region is not None)


def join_genotypes(config: dict, cohort: str, parts: list[str], out: str) -> dict:
    """results/{cohort}/genotypes.zarr from the pieces of a split conversion, in VCF order."""
    from genoattn.io.samples import select_samples
    from genoattn.io.vcf_parts import join_parts

    c = config["cohorts"][cohort]
    n_samples = len(select_samples(config, cohort))
    cfg = {"cohort": cohort, **c, "samples_sheet": config.get("samples"), "n_samples": n_samples}
    return join_parts(parts, out, config=cfg, key=f"cohorts.{cohort}")

