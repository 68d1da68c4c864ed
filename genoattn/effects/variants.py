"""The variants of ``references.<name>.variants``, read and checked against the reference.

Input contract
--------------
A VCF or BCF (plain, bgzip; no index needed: it is read once from the start), sites only or with
samples (genotypes are ignored). Each ALT of a record is one variant. VCF POS is 1-based; inside,
``start`` is 0-based. Contig names are mapped onto the reference's with ``contig_aliases`` /
``chr_prefix`` like every other input.

Kept: SNVs and indels (after the bases REF and ALT share at either end are stripped, one of them is
empty) of at most ``max_indel`` bp. Left out and counted (``skipped`` in the output's metadata):
symbolic and breakend ALTs (``<DEL>``, ``*``, ``N[chr:pos[``), MNPs and complex substitutions, ALTs
with a letter other than A/C/G/T, longer indels, records on a contig the reference has but the
config excludes. An error that names the file, the record and the fix, before anything is written:
a REF that differs from the reference FASTA (another assembly, or an unnormalised VCF), a contig the
reference does not have, a REF past the contig end, an unreadable file.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from genoattn import alphabet
from genoattn.effects.consequence import trim

_ACGT = re.compile(r"^[ACGT]+$")


class VariantError(ValueError):
    """Bad variant input; the message names the file, the record and the fix."""


def read_variants(path: str, contig_map, tokens: dict, kept_contigs: set[str], max_indel: int,
                  key: str = "references.<name>.variants") -> tuple[pd.DataFrame, dict]:
    """(variants, skipped counts). ``tokens``: contig -> a callable (start, end) -> reference letters;
    ``contig_map``: a :class:`genoattn.contigs.ContigMap` onto the reference's names."""
    import pysam

    if not os.path.isfile(path):
        raise VariantError(f"variant file {path} does not exist. Fix: correct the config key {key}")
    try:
        vf = pysam.VariantFile(path)
    except (OSError, ValueError) as exc:
        raise VariantError(f"variant file {path} is not a readable VCF/BCF ({exc}). Fix: check it with "
                           f"`bcftools view -h {path}`; write VCF 4.x, plain or bgzip") from None
    rows = []
    skipped = {"symbolic": 0, "non_acgt": 0, "mnp_or_complex": 0, "long_indel": 0, "excluded_contig": 0,
               "no_alt": 0}
    unmapped: dict[str, int] = {}
    with vf:
        n = 0
        it = iter(vf)
        while True:
            try:
                rec = next(it)
            except StopIteration:
                break
            except (OSError, ValueError) as exc:
                raise VariantError(f"variant file {path}: record {n + 1} cannot be read ({exc}). Fix: check it "
                                   f"with `bcftools view {path} | head`; a malformed line or a cut file") from None
            n += 1
            contig = contig_map.map(rec.chrom)
            if contig is None:
                unmapped[rec.chrom] = unmapped.get(rec.chrom, 0) + 1
                continue
            if contig not in kept_contigs:
                skipped["excluded_contig"] += 1
                continue
            ref = rec.ref.upper()
            start = rec.pos - 1
            fetch = tokens[contig]
            have = fetch(start, start + len(ref))
            if have != ref:
                what = "runs past the end of" if len(have) < len(ref) else "does not match"
                raise VariantError(
                    f"variant file {path}: record {n} ({rec.chrom}:{rec.pos} {rec.ref}>{','.join(rec.alts or ())}): "
                    f"REF {ref} {what} the reference, which has {have or 'nothing'} at {contig}:{rec.pos} "
                    f"(VCF POS is 1-based). Fix: use the VCF made on this reference assembly, or repair it with "
                    f"`bcftools norm --check-ref s -f <reference.fa> {path}`")
            if not rec.alts:
                skipped["no_alt"] += 1
                continue
            for allele_index, alt in enumerate(rec.alts, start=1):
                alt_u = alt.upper()
                if alt_u.startswith("<") or alt_u == "*" or "[" in alt_u or "]" in alt_u or alt_u == ".":
                    skipped["symbolic"] += 1
                    continue
                if not _ACGT.match(alt_u) or not _ACGT.match(ref):
                    skipped["non_acgt"] += 1
                    continue
                t_start, t_ref, t_alt = trim(start, ref, alt_u)
                if t_ref and t_alt and not (len(t_ref) == 1 and len(t_alt) == 1):
                    skipped["mnp_or_complex"] += 1
                    continue
                if not t_ref and not t_alt:
                    skipped["no_alt"] += 1
                    continue
                if abs(len(t_alt) - len(t_ref)) > max_indel:
                    skipped["long_indel"] += 1
                    continue
                kind = "snv" if len(t_ref) == len(t_alt) else ("insertion" if len(t_alt) > len(t_ref) else "deletion")
                rows.append((contig, rec.chrom, rec.pos, start, ref, alt_u, rec.id or ".", n - 1, allele_index,
                             kind, t_start))
    if unmapped:
        names = sorted(unmapped, key=unmapped.get, reverse=True)
        raise VariantError(contig_map.unmapped_message(names, path, key.rsplit(".", 1)[0]))
    if not rows:  # nothing to score: an empty table would look like a finished run
        left = ", ".join(f"{v} {k}" for k, v in skipped.items() if v) or "none"
        raise VariantError(f"variant file {path}: no SNV or indel left to score ({n} records read; left out: {left}). "
                           f"Fix: give SNVs or indels of at most levels.effects.max_indel bp with A/C/G/T alleles on "
                           f"contigs the reference selects (include/exclude)")
    cols = ["contig", "vcf_chrom", "pos", "start", "ref", "alt", "vcf_id", "record", "allele", "kind", "change_start"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("pos", "start", "record", "allele", "change_start"):
        df[c] = df[c].astype(np.int64)
    return df, skipped


def letters_of(tokens_array) -> callable:
    """(start, end) -> upper-case reference letters of a contig's token array (zarr or numpy)."""
    def fetch(start: int, end: int) -> str:
        end = min(end, tokens_array.shape[0])
        if start >= end:
            return ""
        return alphabet.decode(np.asarray(tokens_array[start:end]))
    return fetch
