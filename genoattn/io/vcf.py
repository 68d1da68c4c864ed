"""VCF/BCF -> genotypes.zarr (VCF Zarr names), streamed region by region with pysam.

Store contract (``results/{cohort}/genotypes.zarr``; dims ``variants``, ``samples``, ``ploidy``,
``alleles``, ``contigs``)::

    call_genotype        int8 [variants, samples, ploidy]  allele index; -1 missing, -2 = no such allele
                                                           (the second slot of a haploid call)
    call_genotype_mask   bool [variants, samples, ploidy]  call_genotype < 0
    call_genotype_phased bool [variants, samples]          '|' calls (haploid calls count as phased)
    variant_contig       int16 [variants]                  index into contig_id
    variant_position     int64 [variants]                  1-BASED VCF POS, as VCF Zarr stores it;
                                                           genoattn uses variant_position - 1 inside
    variant_allele       str  [variants, alleles]          REF then ALTs, "" padding
    variant_id           str  [variants]                   ID column ("." when none)
    variant_maf          float32 [variants]                minor allele frequency in the kept samples
    variant_call_rate    float32 [variants]                fraction of kept samples with a full call
    contig_id            str  [contigs]                    contig names (reference names when the cohort
                                                           has a reference, else VCF names after aliases)
    contig_length        int64 [contigs]                   -1 when unknown
    sample_id            str  [samples]

Root attrs: level="genotypes", config, inputs, model ({"weights": "none"}), ``position_base`` (the
1-based statement), ``filter_counts`` ({"records", "kept", "dropped": {reason: n}}, where records =
kept + sum(dropped)), ``contig_length`` (dict), ``vcf_zarr_names`` = True.

Memory: records are read with ``VariantFile.fetch`` one contig/region at a time and flushed every
``chunk_variants`` kept records into resizable zarr arrays, so memory is bounded by one chunk of
records x samples, never by the number of variants.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from genoattn.contigs import ContigMap
from genoattn.io.store import atomic_store, input_checksums, mark_coordinates

log = logging.getLogger("genoattn.vcf")

# Order in which filters are tested; a dropped record is counted under the first that fails.
DROP_REASONS = ("contig_not_selected", "filter", "no_alt", "multiallelic", "too_many_alleles", "not_snv",
                "call_rate", "monomorphic", "maf")

DEFAULT_FILTERS = {"snvs_only": True, "biallelic": True, "filter_pass": True, "maf": 0.0,
                   "min_call_rate": 0.0, "drop_monomorphic": True, "max_alleles": 4}

_BASES = set("ACGTacgt")


#: the empty BGZF block every complete bgzip/BCF file ends with (SAM spec 4.1.2)
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


class VcfError(ValueError):
    """Bad genotype input; the message names the file, the record and the fix."""


def index_path(vcf: str | os.PathLike) -> str | None:
    for ext in (".csi", ".tbi"):
        if os.path.isfile(str(vcf) + ext):
            return str(vcf) + ext
    return None


def check_vcf(vcf: str | os.PathLike, key: str = "cohorts.<name>.vcf") -> str:
    """Existence, compression and index of a VCF/BCF; returns the index path."""
    vcf = str(vcf)
    if not os.path.isfile(vcf):
        raise VcfError(f"VCF {vcf} does not exist. Fix: correct the config key {key}")
    with open(vcf, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"\x1f\x8b":
        raise VcfError(f"VCF {vcf} is not bgzip-compressed; region-by-region reading needs bgzip + index. "
                       f"Fix: bgzip {vcf} && bcftools index {vcf}.gz (then point {key} at the .gz)")
    idx = index_path(vcf)
    if idx is None:
        raise VcfError(f"VCF {vcf} has no index ({os.path.basename(vcf)}.csi or .tbi next to it); genoattn reads "
                       f"it region by region. Fix: bcftools index {vcf}  (or: tabix -p vcf {vcf})")
    with open(vcf, "rb") as fh:
        fh.seek(max(0, os.path.getsize(vcf) - len(BGZF_EOF)))
        tail = fh.read()
    if tail != BGZF_EOF:
        raise VcfError(f"VCF {vcf} is truncated: it does not end with the BGZF end-of-file block (an interrupted "
                       f"download or copy?). Fix: download or copy it again (check with `bgzip -t {vcf}`), then "
                       f"index it again: bcftools index -f {vcf}")
    if os.path.getmtime(idx) < os.path.getmtime(vcf):
        raise VcfError(f"VCF {vcf}: its index {idx} is older than the VCF (the VCF was rewritten after it was "
                       "indexed), so reading by region would silently miss or misplace records. Fix: index it "
                       f"again: bcftools index -f {vcf}  (or: tabix -f -p vcf {vcf}); if the VCF did not change "
                       f"(copied without keeping file times), `touch {idx}`")
    return idx


REGION_PATTERN = r"([^:\s]+)(?::([\d,]+)(?:-([\d,]+))?)?"


def _records(iterator, vcf, contig: str):
    """The records of a fetch; a block that cannot be read (corrupt or cut file) is a VcfError naming it."""
    last = None
    while True:
        try:
            rec = next(iterator)
        except StopIteration:
            return
        except OSError as exc:
            where = f"after record {contig}:{last}" if last else f"at the start of contig {contig}"
            raise VcfError(f"VCF {vcf}: cannot be read {where} ({exc}); the file is corrupt or truncated. Fix: "
                           f"download or copy it again (check with `bgzip -t {vcf}`), then index it again "
                           f"(bcftools index -f {vcf})") from None
        last = rec.pos
        yield rec


def parse_region(region: str, key: str = "cohorts.<name>.regions") -> tuple[str, int | None, int | None]:
    """'20', '20:1000000-2000000' (1-based inclusive, commas allowed) -> (contig, start0, end0)."""
    m = re.fullmatch(REGION_PATTERN, region.strip())
    if not m:
        raise VcfError(f"{key}: region {region!r} is not contig[:start[-end]]. Fix: write it as samtools and "
                       "bcftools do, e.g. '20' or '20:1000000-2000000' (1-based, inclusive)")
    contig, s, e = m.groups()
    start = int(s.replace(",", "")) - 1 if s else None
    end = int(e.replace(",", "")) if e else None
    return contig, start, end


def no_variant_left(vcf, n_records: int, counts: dict, key: str, regions=None) -> VcfError:
    nz = {k: v for k, v in counts.items() if v}
    return VcfError(f"VCF {vcf}: no variant left after filters ({n_records} records read"
                    f"{', regions ' + ', '.join(regions) if regions else ''}; dropped: {nz or 'none'}). "
                    f"Fix: relax {key}.filters (maf, min_call_rate, snvs_only, biallelic, filter_pass) "
                    f"or check {key}.regions / the contig names.")


# -- genotype parsing ---------------------------------------------------------------------------------
class _GtCache(dict):
    """GT string -> row index into a table of (alleles[ploidy], phased); parsed once per distinct string."""

    def __init__(self, ploidy: int):
        super().__init__()
        self.ploidy = ploidy
        self.alleles: list[list[int]] = []
        self.phased: list[bool] = []
        self._arr = None

    def __missing__(self, gt: str) -> int:
        parts = re.split(r"[/|]", gt.lstrip("|/"))
        if len(parts) > self.ploidy:
            raise VcfError(f"genotype {gt!r} has ploidy {len(parts)} > {self.ploidy}")
        try:
            al = [-1 if p in (".", "") else int(p) for p in parts]
        except ValueError:
            raise VcfError(f"genotype {gt!r} is not a GT value") from None
        if any(a > 127 for a in al):
            raise VcfError(f"genotype {gt!r}: allele index above 127")
        al += [-2] * (self.ploidy - len(al))
        idx = len(self.alleles)
        self.alleles.append(al)
        self.phased.append("|" in gt or len(parts) == 1)
        self[gt] = idx
        self._arr = None
        return idx

    def tables(self):
        if self._arr is None:
            self._arr = (np.asarray(self.alleles, dtype=np.int8).reshape(-1, self.ploidy),
                         np.asarray(self.phased, dtype=bool))
        return self._arr


def parse_gt_field(gt_text: str, n_samples: int, ploidy: int, cache: _GtCache, fmt: str):
    """Sample columns of one VCF line -> (alleles int8 [S, ploidy], phased bool [S])."""
    if fmt == "GT" and ploidy == 2 and len(gt_text) == 4 * n_samples - 1:
        # fast path: every call is 'a?b' with one-digit alleles
        raw = np.frombuffer((gt_text + "\t").encode(), dtype=np.uint8).reshape(n_samples, 4)
        a, sep, b, tab = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
        ok_sep = (sep == 124) | (sep == 47)
        ok_a = ((a >= 48) & (a <= 57)) | (a == 46)
        ok_b = ((b >= 48) & (b <= 57)) | (b == 46)
        if (tab == 9).all() and ok_sep.all() and ok_a.all() and ok_b.all():
            out = np.empty((n_samples, 2), dtype=np.int8)
            out[:, 0] = np.where(a == 46, -1, a.astype(np.int16) - 48)
            out[:, 1] = np.where(b == 46, -1, b.astype(np.int16) - 48)
            return out, sep == 124
    cols = gt_text.split("\t")
    if len(cols) != n_samples:
        raise VcfError(f"{len(cols)} sample columns, header has {n_samples}")
    if fmt != "GT":
        keys = fmt.split(":")
        if keys[0] != "GT":
            if "GT" not in keys:
                return np.full((n_samples, ploidy), -1, np.int8), np.zeros(n_samples, bool)
            k = keys.index("GT")
            cols = [(c.split(":") + ["."] * len(keys))[k] for c in cols]
        else:
            cols = [c.split(":", 1)[0] for c in cols]
    idx = np.fromiter(map(cache.__getitem__, cols), dtype=np.int64, count=n_samples)
    al, ph = cache.tables()
    return al[idx], ph[idx]


# -- conversion -----------------------------------------------------------------------------------------
@dataclass
class _Chunk:
    contig: list = field(default_factory=list)
    pos: list = field(default_factory=list)
    vid: list = field(default_factory=list)
    alleles: list = field(default_factory=list)
    gt: list = field(default_factory=list)
    phased: list = field(default_factory=list)

    def __len__(self):
        return len(self.pos)


def auto_chunk_variants(n_samples: int) -> int:
    return int(max(64, min(10_000, 20_000_000 // max(1, n_samples))))


def convert_vcf(vcf: str, out: str, samples: list[str] | None = None, *, filters: dict | None = None,
                reference_names: list[str] | None = None, selected_contigs: list[str] | None = None,
                reference_lengths: dict[str, int] | None = None, contig_aliases: dict | None = None,
                chr_prefix: str = "auto", regions: list[str] | None = None, ploidy: int = 2,
                chunk_variants: int | None = None, chunk_samples: int = 1000, config: dict | None = None,
                extra_inputs: list[str] | None = None, key: str = "cohorts.<name>", allow_empty: bool = False) -> dict:
    """Convert ``vcf`` to the genotypes store at ``out``; return the filter counts.

    ``allow_empty``: a store without variants instead of an error (one piece of a split conversion).

    ``reference_names``: all canonical contig names of the cohort's reference (None = no reference:
    contig names are the VCF's after ``contig_aliases``); ``selected_contigs``: the reference contigs
    selected by include/exclude (records elsewhere are dropped as ``contig_not_selected``).
    """
    import pysam

    f = dict(DEFAULT_FILTERS)
    f.update(filters or {})
    idx = check_vcf(vcf, f"{key}.vcf")
    vf = pysam.VariantFile(vcf)
    header_samples = list(vf.header.samples)
    if samples is None:
        samples = header_samples
    if not samples:
        raise VcfError(f"VCF {vcf} has no samples (sites-only VCF); genoattn needs FORMAT/GT per sample. "
                       f"Fix: point {key}.vcf at a VCF with genotypes")
    header_set = set(header_samples)
    missing = [s for s in samples if s not in header_set]
    if missing:
        raise VcfError(f"VCF {vcf}: sample(s) {', '.join(missing[:20])} are not in its header. Fix: correct the sample sheet")
    perm = None
    if samples != header_samples:
        # pysam writes a subset's columns in header order: reorder them to the requested order
        vf.subset_samples(samples)
        wanted_set = set(samples)
        sub_order = [s for s in header_samples if s in wanted_set]
        where = {s: i for i, s in enumerate(sub_order)}
        perm = np.array([where[s] for s in samples], dtype=np.int64)
        if np.array_equal(perm, np.arange(len(samples))):
            perm = None
    if "GT" not in vf.header.formats:
        raise VcfError(f"VCF {vcf} has no FORMAT/GT in its header; genoattn needs genotypes (GT)")
    S = len(samples)
    n_alleles = 2 if f["biallelic"] else int(f["max_alleles"])

    # contigs to read, harmonised with the reference when there is one
    if regions:
        wanted = [parse_region(r) for r in regions]
        unknown = [c for c, _, _ in wanted if c not in vf.header.contigs]
        if unknown:
            raise VcfError(f"VCF {vcf}: region contig(s) {', '.join(unknown)} are not in its header (which has "
                           f"{', '.join(list(vf.header.contigs)[:6])}). Fix: correct {key}.regions (VCF contig names)")
    else:
        names = list(vf.index) if vf.index is not None else list(vf.header.contigs)
        wanted = [(c, None, None) for c in names]
    aliases = dict(contig_aliases or {})
    if reference_names is not None:
        cmap = ContigMap(reference_names, aliases, chr_prefix)
        unmapped = []
        for c, s, e in wanted:
            if cmap.map(c) is None:
                try:
                    has = next(vf.fetch(c, s, e), None) is not None
                except ValueError:
                    has = False
                if has:
                    unmapped.append(c)
        if unmapped:
            header_lengths = {c: vf.header.contigs[c].length for c in vf.header.contigs
                              if vf.header.contigs[c].length}
            raise VcfError(cmap.unmapped_message(unmapped, f"VCF {vcf}", key, lengths=header_lengths,
                                                 reference_lengths=reference_lengths) +
                           f" Or restrict {key}.regions to contigs the reference has.")
        wanted = [w for w in wanted if cmap.map(w[0]) is not None]  # the others have no records
        canon = {c: cmap.map(c) for c, _, _ in wanted}
    else:
        canon = {c: aliases.get(c, c) for c, _, _ in wanted}
    selected = set(selected_contigs) if selected_contigs is not None else None

    contig_ids: list[str] = []
    for c, _, _ in wanted:
        if canon[c] not in contig_ids:
            contig_ids.append(canon[c])
    lengths = {}
    for c, _, _ in wanted:
        n = canon[c]
        L = (reference_lengths or {}).get(n)
        if L is None and c in vf.header.contigs:
            L = vf.header.contigs[c].length
        lengths[n] = int(L) if L is not None else -1

    cv = int(chunk_variants or auto_chunk_variants(S))
    cs = int(max(1, min(chunk_samples, S)))
    counts = {r: 0 for r in DROP_REASONS}
    n_records = 0
    n_kept = 0
    t0 = time.time()
    cache = _GtCache(ploidy)

    cfg_attrs = dict(config or {})
    attrs = {"level": "genotypes", "model": {"weights": "none"}, "config": cfg_attrs,
             "inputs": input_checksums([vcf, idx] + list(extra_inputs or [])),
             "source": str(vcf), "vcf_zarr_names": True,
             "position_base": "variant_position is 1-based (VCF POS), as in VCF Zarr; genoattn uses "
                              "variant_position - 1 (0-based, half-open) inside",
             "contig_length": lengths, "filters": f, "ploidy": ploidy,
             "haploid_calls": "second allele slot = -2 (non-existent), counted as phased"}
    with atomic_store(out, attrs=attrs) as w:
        cap = cv
        arrs = {
            "call_genotype": w.create("call_genotype", (cap, S, ploidy), np.int8, ("variants", "samples", "ploidy"),
                                      chunks=(cv, cs, ploidy), fill_value=-1),
            "call_genotype_mask": w.create("call_genotype_mask", (cap, S, ploidy), bool,
                                           ("variants", "samples", "ploidy"), chunks=(cv, cs, ploidy),
                                           fill_value=True),
            "call_genotype_phased": w.create("call_genotype_phased", (cap, S), bool, ("variants", "samples"),
                                             chunks=(cv, cs), fill_value=False),
            "variant_contig": w.create("variant_contig", (cap,), np.int16, ("variants",), chunks=(cv,), fill_value=-1),
            "variant_position": w.create("variant_position", (cap,), np.int64, ("variants",), chunks=(cv,)),
            "variant_allele": w.create("variant_allele", (cap, n_alleles), str, ("variants", "alleles"),
                                       chunks=(cv, n_alleles), fill_value=""),
            "variant_id": w.create("variant_id", (cap,), str, ("variants",), chunks=(cv,), fill_value=""),
            "variant_maf": w.create("variant_maf", (cap,), np.float32, ("variants",), chunks=(cv,)),
            "variant_call_rate": w.create("variant_call_rate", (cap,), np.float32, ("variants",), chunks=(cv,)),
        }

        def flush(ch: _Chunk):
            nonlocal n_kept, cap
            if not len(ch):
                return
            gt = np.stack(ch.gt)                       # [R, S, P]
            ph = np.stack(ch.phased)
            if perm is not None:
                gt, ph = gt[:, perm], ph[:, perm]
            real = gt != -2
            called = (gt >= 0) | ~real
            full = called.all(axis=2)                  # [R, S] every allele of the call present
            call_rate = full.mean(axis=1)
            # allele frequencies among called alleles
            na = max(n_alleles, int(gt.max(initial=0)) + 1)
            ac = np.stack([(gt == a).sum(axis=(1, 2)) for a in range(na)], axis=1)  # [R, na]
            an = ac.sum(axis=1)
            freq = ac / np.maximum(an, 1)[:, None]
            n_obs = (ac > 0).sum(axis=1)
            maf = np.where(an > 0, 1.0 - freq.max(axis=1), 0.0)
            keep = np.ones(len(ch), bool)
            fail = keep & (call_rate < f["min_call_rate"])
            counts["call_rate"] += int(fail.sum()); keep &= ~fail
            if f["drop_monomorphic"]:
                fail = keep & (n_obs < 2)
                counts["monomorphic"] += int(fail.sum()); keep &= ~fail
            fail = keep & (maf < f["maf"])
            counts["maf"] += int(fail.sum()); keep &= ~fail
            k = int(keep.sum())
            if not k:
                return
            while n_kept + k > cap:
                cap *= 2
                for name, a in arrs.items():
                    a.resize((cap,) + a.shape[1:])
            sl = slice(n_kept, n_kept + k)
            gk = gt[keep]
            arrs["call_genotype"][sl] = gk
            arrs["call_genotype_mask"][sl] = gk < 0
            arrs["call_genotype_phased"][sl] = ph[keep]
            arrs["variant_contig"][sl] = np.asarray(ch.contig, np.int16)[keep]
            arrs["variant_position"][sl] = np.asarray(ch.pos, np.int64)[keep]
            al = np.array([a + [""] * (n_alleles - len(a)) for a in ch.alleles], dtype=object)[keep]
            arrs["variant_allele"][sl] = al.astype(str)
            arrs["variant_id"][sl] = np.asarray(ch.vid, dtype=object)[keep].astype(str)
            arrs["variant_maf"][sl] = maf[keep].astype(np.float32)
            arrs["variant_call_rate"][sl] = call_rate[keep].astype(np.float32)
            n_kept += k

        chunk = _Chunk()
        last_log = time.time()
        for c, start, end in wanted:
            ci = contig_ids.index(canon[c])
            try:
                it = _records(vf.fetch(c, start, end), vcf, c)
            except ValueError:
                continue  # contig in the header but without records / not in the index
            for rec in it:
                if start is not None and rec.start < start:
                    continue  # overlaps the region but starts before it
                n_records += 1
                if selected is not None and canon[c] not in selected:
                    counts["contig_not_selected"] += 1
                    continue
                if f["filter_pass"]:
                    flt = rec.filter.keys()
                    if flt and flt != ["PASS"]:
                        counts["filter"] += 1
                        continue
                alts = rec.alts
                if not alts:
                    counts["no_alt"] += 1
                    continue
                if f["biallelic"] and len(alts) > 1:
                    counts["multiallelic"] += 1
                    continue
                if 1 + len(alts) > n_alleles:
                    counts["too_many_alleles"] += 1
                    continue
                alleles = [rec.ref] + list(alts)
                if f["snvs_only"] and not all(len(a) == 1 and a in _BASES for a in alleles):
                    counts["not_snv"] += 1
                    continue
                line = str(rec)
                parts = line.rstrip("\n").split("\t", 9)
                try:
                    g, p = parse_gt_field(parts[9] if len(parts) > 9 else "", S, ploidy, cache, parts[8])
                except VcfError as exc:
                    raise VcfError(f"VCF {vcf}, record {c}:{rec.pos} {rec.id or '.'}: {exc}. Fix: correct the record "
                                   f"(or set {key}.ploidy if the organism is not diploid)") from None
                if g.max(initial=-1) >= len(alleles):
                    raise VcfError(f"VCF {vcf}, record {c}:{rec.pos}: a genotype refers to allele "
                                   f"{int(g.max())} but the record has {len(alleles)} alleles. Fix: correct the record")
                chunk.contig.append(ci)
                chunk.pos.append(rec.pos)
                chunk.vid.append(rec.id or ".")
                chunk.alleles.append(alleles)
                chunk.gt.append(g)
                chunk.phased.append(p)
                if len(chunk) >= cv:
                    flush(chunk)
                    chunk = _Chunk()
                    if time.time() - last_log > 30:
                        last_log = time.time()
                        log.info("%s: %d records read, %d kept (%.0f records/s)", vcf, n_records, n_kept,
                                 n_records / (last_log - t0))
        flush(chunk)
        dropped = sum(counts.values())
        assert n_kept + dropped == n_records, (n_kept, dropped, n_records)
        if n_kept == 0 and not allow_empty:
            raise no_variant_left(vcf, n_records, counts, key, regions)
        for a in arrs.values():
            a.resize((n_kept,) + a.shape[1:])
        w.write("contig_id", np.array(contig_ids, dtype=object), dims=("contigs",))
        w.write("contig_length", np.array([lengths[c] for c in contig_ids], np.int64), dims=("contigs",))
        w.write("sample_id", np.array(samples, dtype=object), dims=("samples",))
        summary = {"records": n_records, "kept": n_kept, "dropped": counts,
                   "seconds": round(time.time() - t0, 3)}
        w.group.attrs["filter_counts"] = summary
        mark_coordinates(w, "variant_position", "variant_contig", "variant_id", "sample_id", "contig_id")
    vf.close()
    log.info("%s: %d records, kept %d variants x %d samples in %.1f s; dropped %s", vcf, n_records, n_kept, S,
             time.time() - t0, {k: v for k, v in counts.items() if v})
    return summary
