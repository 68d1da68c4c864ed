"""Genotype conversion (genoattn.io.vcf), sample sheet, LD blocks: on the real 1000 Genomes chr20 demo data
(plus one small synthetic VCF, labelled as such, for haploid/multi-allelic/FILTER cases)."""

from __future__ import annotations

import shutil

import numpy as np
import pysam
import pytest
import xarray as xr

from demo_paths import DEMO, VCF_1KG, YEAST_FASTA
from genoattn.config import defaults, validate_config
from genoattn.io.samples import SampleSheetError, check_sheet_cohorts, covariates, select_samples, vcf_samples
from genoattn.io.store import open_group
from genoattn.io.vcf import DROP_REASONS, VcfError, convert_vcf, parse_region
from genoattn.ld import write_ld_blocks
from genoattn.levels.cohort import run_genotypes

UNPHASED = DEMO / "1kg_chr20" / "unphased.vcf.gz"


def _random_region(rng, width=150_000):
    start = int(rng.integers(1_000_000, 3_900_000 - width))
    return f"20:{start}-{start + width}"


def _pysam_reference(vcf, region, samples, filters):
    """Independent re-implementation with pysam's own record/sample API: (kept dict, dropped counts)."""
    contig, s0, e0 = parse_region(region)
    kept, dropped, n = {}, {r: 0 for r in DROP_REASONS}, 0
    with pysam.VariantFile(str(vcf)) as vf:
        for rec in vf.fetch(contig, s0, e0):
            if rec.start < s0:
                continue
            n += 1
            if filters["filter_pass"] and list(rec.filter.keys()) not in ([], ["PASS"]):
                dropped["filter"] += 1; continue
            if not rec.alts:
                dropped["no_alt"] += 1; continue
            if len(rec.alts) > 1:
                dropped["multiallelic"] += 1; continue
            if not all(len(a) == 1 and a.upper() in "ACGT" for a in rec.alleles):
                dropped["not_snv"] += 1; continue
            gts = [rec.samples[s]["GT"] for s in samples]
            called = [g for g in gts if None not in g]
            alleles = [a for g in called for a in g]
            rate = len(called) / len(samples)
            if rate < filters["min_call_rate"]:
                dropped["call_rate"] += 1; continue
            if len(set(alleles)) < 2:
                dropped["monomorphic"] += 1; continue
            af = alleles.count(1) / len(alleles)
            if min(af, 1 - af) < filters["maf"]:
                dropped["maf"] += 1; continue
            dos = np.array([-1 if None in g else sum(a > 0 for a in g) for g in gts])
            phased = np.array([rec.samples[s].phased for s in samples])
            kept[(rec.pos, rec.ref, rec.alts[0])] = (dos, phased)
    return kept, dropped, n


@pytest.mark.parametrize("vcf", [VCF_1KG, UNPHASED], ids=["phased", "unphased"])
def test_genotypes_equal_pysam_and_dropped_counts_add_up(tmp_path, vcf):
    rng = np.random.default_rng()
    all_samples = vcf_samples(vcf)
    samples = list(rng.choice(all_samples, size=25, replace=False))
    region = _random_region(rng)
    filters = {"snvs_only": True, "biallelic": True, "filter_pass": True, "maf": float(rng.choice([0.0, 0.05])),
               "min_call_rate": 0.5, "drop_monomorphic": True}
    out = tmp_path / "g.zarr"
    summary = convert_vcf(str(vcf), str(out), samples, filters=filters, regions=[region])
    kept, dropped, n = _pysam_reference(vcf, region, samples, filters)
    assert summary["records"] == n == summary["kept"] + sum(summary["dropped"].values())
    assert summary["kept"] == len(kept) > 0
    assert summary["dropped"] == dropped

    ds = xr.open_zarr(out)
    assert list(ds["sample_id"].values) == samples
    assert ds["call_genotype"].dims == ("variants", "samples", "ploidy")
    assert "variant_position" in ds.coords and "sample_id" in ds.coords
    gt = ds["call_genotype"].values
    assert np.array_equal(ds["call_genotype_mask"].values, gt < 0)
    pos = ds["variant_position"].values
    al = ds["variant_allele"].values
    assert list(ds["contig_id"].values) == ["20"] and (ds["variant_contig"].values == 0).all()
    for i, (p, ref, alt) in enumerate(zip(pos, al[:, 0], al[:, 1])):
        dos, phased = kept[(int(p), str(ref), str(alt))]
        mine = np.where((gt[i] < 0).any(axis=1), -1, (gt[i] > 0).sum(axis=1))
        assert np.array_equal(mine, dos), f"variant {p}"
        assert np.array_equal(ds["call_genotype_phased"].values[i], phased)
    # per-variant genotype counts (hom-ref / het / hom-alt / missing)
    counts_store = np.stack([(np.where((gt < 0).any(2), -1, (gt > 0).sum(2)) == k).sum(1) for k in (-1, 0, 1, 2)], 1)
    counts_pysam = np.stack([np.array([(kept[(int(p), str(r), str(a))][0] == k).sum()
                                       for p, r, a in zip(pos, al[:, 0], al[:, 1])]) for k in (-1, 0, 1, 2)], 1)
    assert np.array_equal(counts_store, counts_pysam)
    assert ds.attrs["level"] == "genotypes" and "1-based" in ds.attrs["position_base"]
    assert str(vcf) in ds.attrs["inputs"]


def _synthetic_vcf(path):
    """SYNTHETIC: a tiny VCF with haploid, missing, multi-allelic, indel and FILTER-failing records."""
    header = pysam.VariantHeader()
    header.add_line("##contig=<ID=chrX,length=1000>")
    header.add_line("##contig=<ID=unplaced_1,length=500>")  # in the header, no records
    header.add_line('##FILTER=<ID=LowQual,Description="low">')
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_line('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">')
    for s in ("a", "b", "c"):
        header.add_sample(s)
    lines = [
        "chrX\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1\t./.",       # haploid + missing
        "chrX\t20\t.\tC\tT\t.\tLowQual\t.\tGT\t0/1\t0/0\t1/1",   # FILTER
        "chrX\t30\t.\tG\tA,T\t.\t.\t.\tGT\t0/1\t2/2\t0/0",       # multi-allelic
        "chrX\t40\t.\tGA\tG\t.\t.\t.\tGT\t0/1\t0/0\t0/0",        # indel
        "chrX\t50\t.\tT\tC\t.\t.\t.\tGT:DP\t1/1:3\t0:1\t0|.:2",   # haploid + half-missing
        "chrX\t60\t.\tT\tC\t.\t.\t.\tGT\t0/0\t0\t0/0",           # monomorphic
    ]
    text = str(header) + "\n".join(lines) + "\n"
    plain = path.with_suffix("")
    plain.write_text(text)
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True, csi=True)
    return path


def test_haploid_missing_and_filter_reasons_on_a_synthetic_vcf(tmp_path):
    vcf = _synthetic_vcf(tmp_path / "syn.vcf.gz")
    out = tmp_path / "g.zarr"
    s = convert_vcf(str(vcf), str(out))
    assert s["records"] == 6 and s["kept"] == 2
    assert {k: v for k, v in s["dropped"].items() if v} == {"filter": 1, "multiallelic": 1, "not_snv": 1,
                                                            "monomorphic": 1}
    g = open_group(out)
    gt = g["call_genotype"][:]
    assert gt[0].tolist() == [[0, 1], [1, -2], [-1, -1]]
    assert gt[1].tolist() == [[1, 1], [0, -2], [0, -1]]
    assert g["call_genotype_phased"][:].tolist() == [[True, True, False], [False, True, True]]
    assert g["variant_position"][:].tolist() == [10, 50]
    # multi-allelic kept when asked, with the alleles axis sized by max_alleles
    s2 = convert_vcf(str(vcf), str(tmp_path / "m.zarr"), filters={"biallelic": False, "max_alleles": 3,
                                                                  "filter_pass": False})
    m = open_group(tmp_path / "m.zarr")
    assert s2["kept"] == 4 and m["variant_allele"].shape == (4, 3)  # FILTER and multi-allelic kept now
    assert [str(x) for x in m["variant_allele"][1]] == ["C", "T", ""]
    assert [str(x) for x in m["variant_allele"][2]] == ["G", "A", "T"]
    assert m["call_genotype"][2].tolist() == [[0, 1], [2, 2], [0, 0]]


def test_vcf_without_index_is_a_clear_error(tmp_path):
    vcf = tmp_path / "noindex.vcf.gz"
    shutil.copy(VCF_1KG, vcf)
    with pytest.raises(VcfError, match="has no index") as e:
        convert_vcf(str(vcf), str(tmp_path / "g.zarr"))
    assert str(vcf) in str(e.value) and "bcftools index" in str(e.value)
    assert not (tmp_path / "g.zarr").exists()


def _config(tmp_path, **cohort):
    cfg = {"references": {"yeast_R64": {"fasta": str(YEAST_FASTA)}},
           "cohorts": {"kg": {"vcf": str(VCF_1KG), **cohort}}}
    return validate_config(cfg, check_files=False)


def test_contig_missing_from_the_reference_is_a_clear_error(tmp_path):
    cfg = _config(tmp_path, reference="yeast_R64", regions=["20:1000000-1100000"])
    with pytest.raises(VcfError) as e:
        run_genotypes(cfg, "kg", str(tmp_path / "g.zarr"))
    msg = str(e.value)
    assert str(VCF_1KG) in msg and "20" in msg
    assert "not in the reference" in msg and "cohorts.kg.contig_aliases" in msg
    assert not (tmp_path / "g.zarr").exists()


def test_no_variant_left_after_filters_is_a_clear_error(tmp_path):
    with pytest.raises(VcfError, match="no variant left after filters") as e:
        convert_vcf(str(VCF_1KG), str(tmp_path / "g.zarr"), regions=["20:1000200-1000800"],
                    filters={"maf": 0.5})
    assert str(VCF_1KG) in str(e.value) and "filters" in str(e.value)
    assert not (tmp_path / "g.zarr").exists()


def test_sample_sheet_selection_and_errors(tmp_path):
    rng = np.random.default_rng()
    samples = vcf_samples(VCF_1KG)
    pick = list(rng.choice(samples, size=5, replace=False))
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample_id\tcohort\tage\n" + "".join(f"{s}\tkg\t{30 + i}\n" for i, s in enumerate(pick)))
    cfg = _config(tmp_path)
    cfg["samples"] = str(sheet)
    assert select_samples(cfg, "kg") == pick
    cov = covariates(cfg, "kg")
    assert list(cov.index) == pick and cov["age"].dtype.kind in "if"
    # a cohort without rows keeps every VCF sample
    cfg["cohorts"]["other"] = dict(cfg["cohorts"]["kg"])
    assert select_samples(cfg, "other") == samples
    # absent and duplicated samples: one error that lists them
    sheet.write_text("sample_id\tcohort\n" + f"{pick[0]}\tkg\n{pick[0]}\tkg\nNOPE1\tkg\nNOPE2\tkg\n")
    with pytest.raises(SampleSheetError) as e:
        select_samples(cfg, "kg")
    msg = str(e.value)
    assert str(sheet) in msg and "NOPE1" in msg and "NOPE2" in msg and pick[0] in msg and str(VCF_1KG) in msg
    # schema: whitespace in a sample id, unknown cohort
    sheet.write_text("sample_id\tcohort\nbad id\tkg\n")
    with pytest.raises(SampleSheetError, match="line 2"):
        select_samples(cfg, "kg")
    sheet.write_text("sample_id\tcohort\nHG00096\tnot_a_cohort\n")
    with pytest.raises(SampleSheetError, match="not_a_cohort"):  # checked once for the config, before any job
        check_sheet_cohorts(cfg)


def test_ld_blocks_are_contiguous_and_cover_every_kept_variant(tmp_path):
    rng = np.random.default_rng()
    region = _random_region(rng, 400_000)
    g = tmp_path / "g.zarr"
    convert_vcf(str(VCF_1KG), str(g), list(rng.choice(vcf_samples(VCF_1KG), 60, replace=False)),
                regions=[region])
    opts = {"min_r2": float(rng.uniform(0.05, 0.5)), "max_variants": int(rng.integers(20, 200)), "min_variants": 3}
    s = write_ld_blocks(str(g), str(tmp_path / "ld.zarr"), {**defaults("levels.level6")["ld_blocks"], **opts})
    ld = xr.open_zarr(tmp_path / "ld.zarr")
    start, end = ld["ld_block_start"].values, ld["ld_block_end"].values
    V = open_group(g)["variant_position"].shape[0]
    assert start[0] == 0 and end[-1] == V and np.array_equal(start[1:], end[:-1]) and (end > start).all()
    assert (end - start).max() <= opts["max_variants"] and s["n_blocks"] == len(start)
    pos = open_group(g)["variant_position"][:] - 1
    assert np.array_equal(ld["ld_block_bp_start"].values, pos[start])
    assert np.array_equal(ld["ld_block_bp_end"].values, pos[end - 1] + 1)
    # r^2 of a gap inside a (unsplit) block reaches min_r2 only if some pair crosses it; spot-check with numpy
    gt = open_group(g)["call_genotype"][:]
    d = (gt > 0).sum(2).astype(float)
    r2 = np.corrcoef(d[:-1], d[1:])
    adj = np.array([r2[i, len(d) - 1 + i] for i in range(len(d) - 1)]) ** 2
    gap = ld["gap_r2"].values
    finite = np.isfinite(adj)
    assert (gap[finite] >= adj[finite] - 1e-4).all()  # max over pairs >= the adjacent pair's r^2


def test_bcf_gives_the_same_store_as_the_vcf(tmp_path):
    rng = np.random.default_rng()
    start = int(rng.integers(1_000_000, 3_800_000))
    bcf = tmp_path / "part.bcf"
    with pysam.VariantFile(str(VCF_1KG)) as vf, pysam.VariantFile(str(bcf), "wb", header=vf.header) as out:
        for rec in vf.fetch("20", start, start + 80_000):
            if rec.start >= start:
                out.write(rec)
    pysam.tabix_index(str(bcf), force=True, csi=True, preset="bcf")
    a = convert_vcf(str(bcf), str(tmp_path / "b.zarr"))
    b = convert_vcf(str(VCF_1KG), str(tmp_path / "v.zarr"), regions=[f"20:{start + 1}-{start + 80_000}"])
    assert a["records"] == b["records"] and a["dropped"] == b["dropped"]
    for name in ("call_genotype", "call_genotype_phased", "variant_position"):
        assert np.array_equal(open_group(tmp_path / "b.zarr")[name][:], open_group(tmp_path / "v.zarr")[name][:])


def test_contig_aliases_and_contigs_without_records(tmp_path):
    """SYNTHETIC VCF: chrX mapped onto a reference name by alias; a header contig without records is ignored;
    records on a reference contig left out by include/exclude are counted as contig_not_selected."""
    vcf = _synthetic_vcf(tmp_path / "syn.vcf.gz")
    s = convert_vcf(str(vcf), str(tmp_path / "a.zarr"), reference_names=["chrI", "chrII"],
                    contig_aliases={"chrX": "chrII"}, reference_lengths={"chrI": 10, "chrII": 2000})
    g = open_group(tmp_path / "a.zarr")
    assert [str(c) for c in g["contig_id"][:]] == ["chrII"] and g["contig_length"][:].tolist() == [2000]
    assert s["kept"] == 2
    with pytest.raises(VcfError, match="no variant left") as e:
        convert_vcf(str(vcf), str(tmp_path / "b.zarr"), reference_names=["chrI", "chrII"],
                    selected_contigs=["chrI"], contig_aliases={"chrX": "chrII"})
    assert "contig_not_selected" in str(e.value)
    with pytest.raises(VcfError, match="not in its header"):
        convert_vcf(str(vcf), str(tmp_path / "c.zarr"), regions=["chrY:1-100"])


def test_split_conversion_joins_into_the_store_of_one_conversion(tmp_path):
    """Pieces of a random size (one of them empty: a region past the data) converted one by one and
    joined equal one conversion: every array, its chunks and the filter counts."""
    from genoattn.io.vcf_parts import join_parts, plan_parts

    rng = np.random.default_rng()
    step = int(rng.integers(150_000, 900_000))
    regions = ["20:1500001-3200000", "20:4100001-4300000"]  # the demo VCF has no record past 4 Mb
    parts = plan_parts(str(VCF_1KG), step, regions)
    spans = [parse_region(p) for p in parts]
    assert spans[0][1] == 1_500_000 and spans[-1][2] == 4_300_000
    assert all(b[1] == a[2] for a, b in zip(spans, spans[1:]) if a[2] < 3_200_000)  # contiguous, no overlap
    assert all(e - s <= step for _, s, e in spans)
    stores = []
    for i, region in enumerate(parts):
        stores.append(str(tmp_path / f"p{i}.zarr"))
        convert_vcf(str(VCF_1KG), stores[-1], regions=[region], allow_empty=True)
    assert open_group(stores[-1])["variant_position"].shape == (0,)
    joined = join_parts(stores, str(tmp_path / "joined.zarr"))
    whole = convert_vcf(str(VCF_1KG), str(tmp_path / "whole.zarr"), regions=regions)
    assert {k: v for k, v in joined.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}
    a, b = open_group(tmp_path / "whole.zarr"), open_group(tmp_path / "joined.zarr")
    assert sorted(a.array_keys()) == sorted(b.array_keys())
    for name in a.array_keys():
        assert a[name].chunks == b[name].chunks and np.array_equal(a[name][:], b[name][:]), name
    with pytest.raises(VcfError, match="no variant left"):
        join_parts(stores[-1:], str(tmp_path / "empty.zarr"))
    assert not (tmp_path / "empty.zarr").exists()
