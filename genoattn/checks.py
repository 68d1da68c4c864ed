"""Pre-flight checks shared by the Snakefile and `genoattn check`: every input against the reference,
before any compute.

Cheap by design (indexes and headers, no pass over the data), because Snakemake evaluates them on
every invocation, cluster job steps included. Each check returns a :class:`Finding`; ``preflight``
raises :class:`PreflightError` listing every failed input at once, each message naming the file,
the record and the fix. The jobs check their own inputs again in full (e.g. every FASTA letter).
"""

from __future__ import annotations

from dataclasses import dataclass


class PreflightError(ValueError):
    """One or more inputs do not fit the reference; the message lists all of them."""


@dataclass
class Finding:
    key: str        # config key of the input
    path: str
    ok: bool
    message: str


def _try(key: str, path: str, check) -> Finding:
    try:
        detail = check()
    except (ValueError, OSError) as exc:
        return Finding(key, path, False, str(exc))
    return Finding(key, path, True, detail or "ok")


def check_reference(name: str, ref: dict, hic_cfg: dict) -> list[Finding]:
    from genoattn.io.hic import reference_lengths
    from genoattn.levels.tokenize import selected_records

    key = f"references.{name}"
    found = [_try(f"{key}.fasta", ref["fasta"], lambda: _fasta_summary(ref))]
    if not found[0].ok:
        return found
    contigs = [r[0] for r in selected_records(ref["fasta"], ref["contig_aliases"], ref["include"],
                                              ref["exclude"])]
    if ref.get("hic"):
        def hic():
            from genoattn.io.hic import (HicSource, check_masked_fraction, check_pixels_readable, load_weights,
                                         match_contigs, open_cooler)

            lengths = reference_lengths(ref["fasta"], ref["contig_aliases"])
            clr, uri, res = open_cooler(ref["hic"], ref["hic_resolution"])
            matches, unused = match_contigs(clr, uri, lengths, contigs, ref["contig_aliases"], ref["chr_prefix"],
                                            hic_cfg["missing_contig"])
            check_pixels_readable(clr, uri)
            if hic_cfg["balance_missing"] == "error":  # (in-memory balancing is left to the jobs: it is slow)
                weights, source = load_weights(clr, uri, ref["hic_balance"], "error")
                src = HicSource(ref["hic"], uri, clr, res, ref["hic_balance"], weights, source, matches, unused)
                check_masked_fraction(src, contigs, hic_cfg["max_masked_fraction"])
            return (f"{res} bp bins, {len(matches)} reference contigs matched"
                    + (f"; not used: {', '.join(unused)}" if unused else ""))
        found.append(_try(f"{key}.hic", ref["hic"], hic))
    if ref.get("hic_breakpoints"):
        from genoattn.hic.trans import check_breakpoints

        found.append(_try(f"{key}.hic_breakpoints", ref["hic_breakpoints"], lambda: check_breakpoints(
            ref["hic_breakpoints"], reference_lengths(ref["fasta"], ref["contig_aliases"]), ref["contig_aliases"],
            ref["chr_prefix"])))
    if ref.get("regulatory_elements"):
        from genoattn.io.bedlike import check_bed

        found.append(_try(f"{key}.regulatory_elements", ref["regulatory_elements"], lambda: check_bed(
            ref["regulatory_elements"], reference_lengths(ref["fasta"], ref["contig_aliases"]),
            ref["contig_aliases"], ref["chr_prefix"])))
    if ref.get("variants"):
        found.append(_try(f"{key}.variants", ref["variants"], lambda: _variants_header(ref["variants"])))
    return found


def _variants_header(path: str) -> str:
    """The variant file opens as VCF/BCF (its records are checked against the FASTA by the effects job)."""
    import pysam

    try:
        with pysam.VariantFile(path) as vf:
            return f"VCF header read, {len(vf.header.contigs)} contigs declared"
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable VCF/BCF ({exc}). Fix: check it with `bcftools view -h {path}`")


def _fasta_summary(ref: dict) -> str:
    from genoattn.levels.tokenize import selected_records

    recs = selected_records(ref["fasta"], ref.get("contig_aliases"), ref["include"], ref["exclude"])
    return f"{len(recs)} contigs selected, {sum(r[2] for r in recs):,} bp"


def check_cohort(name: str, cohort: dict, config: dict) -> list[Finding]:
    from genoattn.io.samples import select_samples
    from genoattn.io.vcf import check_vcf

    key = f"cohorts.{name}"
    found = [_try(f"{key}.vcf", cohort["vcf"], lambda: f"index {check_vcf(cohort['vcf'], f'{key}.vcf')}")]
    if not found[0].ok:
        return found
    found.append(_try("samples" if config.get("samples") else f"{key}.vcf", config.get("samples") or cohort["vcf"],
                      lambda: f"{len(select_samples(config, name))} samples selected"))
    if cohort.get("reference"):
        found.append(_try(f"{key}.reference", cohort["vcf"], lambda: _vcf_contigs(name, cohort, config)))
    return found


def _vcf_contigs(name: str, cohort: dict, config: dict) -> str:
    import pysam

    from genoattn.contigs import ContigMap
    from genoattn.io.hic import reference_lengths

    ref = config["references"][cohort["reference"]]
    lengths = reference_lengths(ref["fasta"], ref.get("contig_aliases"))
    with pysam.VariantFile(cohort["vcf"]) as vf:
        names = list(vf.index) if vf.index is not None else list(vf.header.contigs)
        header_lengths = {c: vf.header.contigs[c].length for c in vf.header.contigs if vf.header.contigs[c].length}
    cmap = ContigMap(list(lengths), cohort["contig_aliases"], cohort["chr_prefix"])
    if all(cmap.map(n) is None for n in names):
        raise ValueError(cmap.unmapped_message(names, f"VCF {cohort['vcf']}", f"cohorts.{name}",
                                               lengths=header_lengths, reference_lengths=lengths))
    return f"{sum(cmap.map(n) is not None for n in names)}/{len(names)} VCF contigs map to {cohort['reference']}"


def preflight(config: dict, raise_on_error: bool = True, quiet: bool = False) -> list[Finding]:
    """Check every reference and cohort of a validated config (``quiet``: no warnings, which the
    jobs log themselves, e.g. cooler lengths a few bp off the FASTA's)."""
    if quiet:
        import logging

        import pysam

        logger = logging.getLogger("genoattn")
        level = logger.level
        logger.setLevel(logging.ERROR)
        verbosity = pysam.set_verbosity(0)
        try:
            return preflight(config, raise_on_error, quiet=False)
        finally:
            logger.setLevel(level)
            pysam.set_verbosity(verbosity)
    found: list[Finding] = []
    hic_cfg = config["levels"]["hic"]
    for name, ref in config["references"].items():
        found += check_reference(name, ref, hic_cfg)
    if config.get("samples"):
        from genoattn.io.samples import check_sheet_cohorts

        found.append(_try("samples", config["samples"], lambda: check_sheet_cohorts(config)))
    for name, cohort in config.get("cohorts", {}).items():
        found += check_cohort(name, cohort, config)
    bad = [f for f in found if not f.ok]
    if bad and raise_on_error:
        raise PreflightError("pre-flight checks failed:\n  " + "\n  ".join(f"{f.key}: {f.message}" for f in bad))
    return found
