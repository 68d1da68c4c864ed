"""Fill the missing calls of a cohort with the trained level 6 (masked-genotype prediction).

Input contract
--------------
* ``genotypes.zarr`` of the cohort (:mod:`genoattn.io.vcf`), biallelic; a missing diploid call (any
  allele missing: ``./.``, ``./1``) is imputed; an observed call is kept as it is; a haploid call
  (padded with -2) is kept, and left missing when missing.
* A level-6 checkpoint trained on masked genotypes (``model.safetensors``, its ``trained`` metadata)
  with its prediction head ``head.safetensors`` beside it (what ``snakemake train`` writes).

Outputs
-------
* ``imputed.zarr``: the genotypes store's variables (``call_genotype`` with the hard calls filled in), and
  ``call_dosage`` [variants, samples] float32 (expected ALT count), ``call_genotype_probability``
  [variants, samples, 3] float32 (P(0/0), P(0/1), P(1/1); one-hot for an observed diploid call, NaN for a
  haploid one), ``call_imputed`` bool, ``variant_dr2`` (estimated dosage r^2 of the imputed calls, MaCH's
  Rsq: their dosage variance over 2p(1-p); NaN without two imputed calls) and ``variant_n_imputed``.
* ``imputed.vcf.gz`` (bgzip, CSI index): FORMAT GT:DS:GP per call (an imputed GT is unphased and is the
  genotype nearest DS, so GT and DS never disagree by more than 0.5), INFO AF, DR2, IMP.

Both are written under temporary names and renamed when complete: a failed run leaves neither.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("genoattn.impute")

VCF_FORMAT = "GT:DS:GP"


def imputed_store(vcf: str) -> str:
    """The zarr store written beside an imputed VCF: results/{cohort}/imputed.vcf.gz -> imputed.zarr."""
    name = Path(vcf).name
    for ext in (".vcf.gz", ".vcf.bgz", ".gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return str(Path(vcf).with_name(name + ".zarr"))


def head_path(checkpoint: str) -> str:
    """The prediction head beside a level-6 checkpoint; an error naming the fix when it is not there."""
    head = str(Path(checkpoint).with_name("head.safetensors"))
    if not os.path.exists(head):
        raise FileNotFoundError(f"{head} does not exist: imputation needs the masked-genotype head that training "
                                f"writes beside {checkpoint}. Fix: point levels.level6.checkpoint at a "
                                "`snakemake train` output (results/{cohort}/train/level6/model.safetensors)")
    return head


def load_imputer(opts: dict, checkpoint: str | None, context_dim: int, device):
    """(module, head, identity) of a trained level 6; an error when the checkpoint is not one."""
    import torch
    from safetensors import safe_open

    from genoattn.levels.cohort import build_model
    from genoattn.training.loop import prediction_head
    from genoattn.training.masked_genotypes import MaskedGenotypes

    if not checkpoint:
        raise ValueError("levels.level6.checkpoint is null: imputation needs a level 6 trained on masked genotypes. "
                         "Fix: set it to `train` (and set cohorts.<name>.held_out for `snakemake train`) or to a "
                         "trained checkpoint such as data/demo/checkpoints/level6/model.safetensors")
    head_file = head_path(checkpoint)
    with safe_open(head_file, framework="pt") as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    if meta.get("objective") != MaskedGenotypes.name:
        raise ValueError(f"{head_file} is the head of {meta.get('objective', 'an unknown objective')!r}, not of "
                         f"{MaskedGenotypes.name!r}. Fix: use a level-6 checkpoint trained on masked genotypes")
    module, identity = build_model(dict(opts, checkpoint=checkpoint), context_dim)
    head = prediction_head(module.dim, 3, 0)
    head.load_state_dict(state)
    return module.to(device).eval(), head.to(device).eval(), identity | {"head": head_file}


def _gt_strings(gt: np.ndarray, phased: np.ndarray) -> list[str]:
    """call_genotype rows [S, P] (+ phased [S]) -> VCF GT strings (-1 missing, -2 padding dropped)."""
    out = []
    for row, ph in zip(gt.tolist(), phased.tolist()):
        alleles = ["." if a == -1 else str(a) for a in row if a != -2]
        out.append(("|" if ph else "/").join(alleles) if alleles else ".")
    return out


def mach_rsq(dosage: np.ndarray, imputed: np.ndarray) -> np.ndarray:
    """Per variant (rows): variance of the imputed calls' dosages over 2p(1-p), p from every call's dosage;
    NaN with fewer than two imputed calls or a monomorphic site."""
    n = imputed.sum(axis=1)
    valid = np.isfinite(dosage)
    p = np.where(valid, dosage, 0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1) / 2
    d = np.where(imputed, dosage, 0.0)
    mean = d.sum(axis=1) / np.maximum(n, 1)
    var = (np.where(imputed, (dosage - mean[:, None]) ** 2, 0.0)).sum(axis=1) / np.maximum(n, 1)
    expected = 2 * p * (1 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((n >= 2) & (expected > 0), np.clip(var / expected, 0, 1), np.nan)
    return r.astype(np.float32)


def impute_cohort(genotypes: str, ld_blocks: str | None, out_vcf: str, out_zarr: str, opts: dict,
                  checkpoint: str | None, level5: str | None = None, device: str = "auto",
                  cohort: str | None = None) -> dict:
    """Impute the missing diploid calls of ``genotypes``; write ``out_zarr`` and ``out_vcf`` (+ .csi)."""
    import torch

    from genoattn.io.store import atomic_store, input_checksums, mark_coordinates, open_group
    from genoattn.levels.cohort import MISSING_CODE, Level5Context, segment_ids, variant_base
    from genoattn.model import pick_device
    from genoattn.training.masked_genotypes import genotype_probabilities, read_codes

    g = open_group(genotypes)
    V, S = int(g["variant_position"].shape[0]), int(g["sample_id"].shape[0])
    dev = pick_device(device)
    ctx = Level5Context(level5) if level5 else None
    module, head, identity = load_imputer(opts, checkpoint, ctx.dim if ctx else 0, dev)
    with torch.no_grad():
        base, _ = variant_base(module, g, opts, ctx, dev)
    seg = torch.from_numpy(segment_ids(g, ld_blocks, opts["windows"])).to(dev)
    ploidy = int(g["call_genotype"].shape[2])
    if ploidy != 2:
        raise ValueError(f"{genotypes} has ploidy {ploidy}: imputation fills diploid calls (haploid calls of a "
                         "diploid store are kept). Fix: cohorts.<name>.ploidy: 2")
    attrs = {"level": "imputed", "cohort": cohort, "model": identity, "genotypes": genotypes,
             "inputs": input_checksums([checkpoint, identity["head"]]),
             "call_dosage": "expected number of ALT alleles; observed calls as called",
             "variant_dr2": "estimated dosage r^2 of the imputed calls (MaCH Rsq)"}
    tmp_vcf = str(Path(out_vcf).with_name(f".tmp-{os.getpid()}-{Path(out_vcf).name}"))  # ends in .gz, as tabix wants
    t0 = time.time()
    try:
        with atomic_store(out_zarr, attrs=attrs) as w:
            for name in ("variant_position", "variant_contig", "variant_allele", "variant_id", "contig_id",
                         "contig_length", "sample_id"):
                if name in g:
                    data = np.asarray(g[name][:])
                    w.write(name, data.astype(object) if data.dtype.kind == "T" else data,
                            dims=tuple(g[name].metadata.dimension_names or ()))
            step = max(1, int(opts["samples_per_shard"]))
            chunks = (min(V, 10000) or 1, min(S, step) or 1)
            dosage_a = w.create("call_dosage", (V, S), np.float32, ("variants", "samples"), chunks=chunks,
                                fill_value=np.nan)
            gp_a = w.create("call_genotype_probability", (V, S, 3), np.float32, ("variants", "samples", "genotypes"),
                            chunks=chunks + (3,), fill_value=np.nan)
            imp_a = w.create("call_imputed", (V, S), bool, ("variants", "samples"), chunks=chunks)
            gt_a = w.create("call_genotype", (V, S, ploidy), np.int8, ("variants", "samples", "ploidy"),
                            chunks=chunks + (ploidy,), fill_value=-1)
            ph_a = w.create("call_genotype_phased", (V, S), bool, ("variants", "samples"), chunks=chunks)
            bsz = int(opts["batch_size"])
            for a in range(0, S, step):
                b = min(S, a + step)
                codes = read_codes(g, np.arange(a, b))                   # [n, V]
                gt = np.asarray(g["call_genotype"][:, a:b])               # [V, n, P]
                phased = np.asarray(g["call_genotype_phased"][:, a:b]) if "call_genotype_phased" in g else \
                    np.zeros(gt.shape[:2], bool)
                probs = np.zeros((b - a, V, 3), np.float32)
                with torch.no_grad():
                    for i in range(0, b - a, bsz):
                        if not (codes[i:i + bsz] == MISSING_CODE).any():
                            continue  # nothing to impute: the observed calls are kept as called
                        c = torch.from_numpy(codes[i:i + bsz].astype(np.int64)).to(dev)
                        probs[i:i + bsz] = torch.softmax(genotype_probabilities(
                            module, head, c, base, seg, int(opts["query_block"])), -1).cpu().numpy()
                diploid = (gt != -2).all(axis=2)                          # [V, n]
                missing = (codes.T == MISSING_CODE) & diploid
                observed = (codes.T <= 2)
                gp = probs.transpose(1, 0, 2).copy()                      # [V, n, 3]
                obs_codes = np.clip(codes.T, 0, 2)
                gp[observed] = np.eye(3, dtype=np.float32)[obs_codes[observed]]
                gp[~(observed | missing)] = np.nan
                dosage = gp[..., 1] + 2 * gp[..., 2]
                haploid_obs = ~diploid & (gt >= 0).any(axis=2)
                dosage[haploid_obs] = (gt[haploid_obs] > 0).sum(axis=1)
                hard = np.clip(np.rint(dosage), 0, 2).astype(np.int8)
                filled = gt.copy()
                if ploidy >= 2:
                    filled[missing, 0] = (hard[missing] >= 2).astype(np.int8)
                    filled[missing, 1] = (hard[missing] >= 1).astype(np.int8)
                phased = np.where(missing, False, phased)
                dosage_a[:, a:b] = dosage
                gp_a[:, a:b] = gp
                imp_a[:, a:b] = missing
                gt_a[:, a:b] = filled
                ph_a[:, a:b] = phased
                log.info("impute: samples %d-%d of %d (%d calls imputed), %.1f s", a, b, S, int(missing.sum()),
                         time.time() - t0)
            dr2 = np.zeros(V, np.float32)
            n_imp = np.zeros(V, np.int64)
            for v0 in range(0, V, chunks[0]):
                v1 = min(V, v0 + chunks[0])
                d, im = np.asarray(dosage_a[v0:v1]), np.asarray(imp_a[v0:v1])
                dr2[v0:v1], n_imp[v0:v1] = mach_rsq(d, im), im.sum(axis=1)
            w.write("variant_dr2", dr2, dims=("variants",))
            w.write("variant_n_imputed", n_imp, dims=("variants",))
            mark_coordinates(w, *[n for n in ("variant_position", "variant_contig", "variant_allele", "variant_id",
                                              "sample_id") if n in g])
            _write_vcf(tmp_vcf, g, dosage_a, gp_a, imp_a, gt_a, ph_a, dr2, n_imp, identity, chunks[0])
        os.replace(f"{tmp_vcf}.csi", f"{out_vcf}.csi")
        os.replace(tmp_vcf, out_vcf)
    finally:
        for p in (tmp_vcf, f"{tmp_vcf}.csi"):
            if os.path.exists(p):
                os.unlink(p)
    info = {"variants": V, "samples": S, "imputed_calls": int(n_imp.sum()), "seconds": round(time.time() - t0, 1)}
    log.info("impute: %d calls imputed over %d variants x %d samples in %.1f s; wrote %s and %s",
             info["imputed_calls"], V, S, info["seconds"], out_vcf, out_zarr)
    return info


def _write_vcf(path: str, g, dosage_a, gp_a, imp_a, gt_a, ph_a, dr2, n_imp, identity: dict, step: int) -> None:
    """bgzipped VCF of the imputed store's arrays, then its CSI index (``path``.csi)."""
    import pysam

    from genoattn import __version__

    contigs = [str(c) for c in g["contig_id"][:]]
    lengths = np.asarray(g["contig_length"][:], np.int64) if "contig_length" in g else np.zeros(len(contigs), np.int64)
    samples = [str(s) for s in g["sample_id"][:]]
    header = ["##fileformat=VCFv4.2", f"##source=genoattn {__version__} impute (level 6, {identity.get('weights')})"]
    header += [f"##contig=<ID={c},length={int(n)}>" if n else f"##contig=<ID={c}>" for c, n in zip(contigs, lengths)]
    header += ['##INFO=<ID=AF,Number=A,Type=Float,Description="ALT allele frequency: mean dosage / 2 over all calls">',
               '##INFO=<ID=DR2,Number=A,Type=Float,Description="Estimated dosage r-squared of the imputed calls '
               '(variance of their dosages over 2p(1-p))">',
               '##INFO=<ID=IMP,Number=1,Type=Integer,Description="Number of imputed calls">',
               '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype (imputed calls: the genotype nearest DS, '
               'unphased)">',
               '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage (expected ALT allele count)">',
               '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Genotype probabilities P(0/0), P(0/1), P(1/1)">',
               "#" + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples])]
    V = int(g["variant_position"].shape[0])
    with pysam.BGZFile(path, "wb") as out:
        out.write(("\n".join(header) + "\n").encode())
        for v0 in range(0, V, step):
            v1 = min(V, v0 + step)
            pos = np.asarray(g["variant_position"][v0:v1])
            contig = np.asarray(g["variant_contig"][v0:v1])
            alleles = np.asarray(g["variant_allele"][v0:v1])
            ids = np.asarray(g["variant_id"][v0:v1]) if "variant_id" in g else np.full(v1 - v0, ".", object)
            dosage, gp, gt, ph = (np.asarray(dosage_a[v0:v1]), np.asarray(gp_a[v0:v1]), np.asarray(gt_a[v0:v1]),
                                  np.asarray(ph_a[v0:v1]))
            lines = []
            for i in range(v1 - v0):
                d = dosage[i]
                ok = np.isfinite(d)
                af = float(d[ok].mean() / 2) if ok.any() else float("nan")
                ds = np.where(ok, np.char.mod("%.3f", np.nan_to_num(d)), ".")
                has_gp = np.isfinite(gp[i]).all(axis=1)
                gps = np.char.mod("%.3f", np.nan_to_num(gp[i]))
                gp_txt = np.where(has_gp, np.char.add(np.char.add(np.char.add(gps[:, 0], ","),
                                                                  np.char.add(gps[:, 1], ",")), gps[:, 2]), ".")
                gts = _gt_strings(gt[i], ph[i])
                cells = "\t".join(f"{a}:{b}:{c}" for a, b, c in zip(gts, ds.tolist(), gp_txt.tolist()))
                info = [f"AF={af:.4f}" if np.isfinite(af) else "AF=.",
                        f"DR2={dr2[v0 + i]:.3f}" if np.isfinite(dr2[v0 + i]) else "DR2=.", f"IMP={int(n_imp[v0 + i])}"]
                alt = ",".join(str(x) for x in alleles[i][1:] if str(x)) or "."
                vid = str(ids[i]) or "."
                lines.append("\t".join([contigs[int(contig[i])], str(int(pos[i])), vid, str(alleles[i][0]), alt, ".",
                                        "PASS", ";".join(info), VCF_FORMAT, cells]))
            out.write(("\n".join(lines) + "\n").encode())
    pysam.tabix_index(path, preset="vcf", csi=True, force=True)
