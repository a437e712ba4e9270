"""The report section "Target engagement (Patlak) and time-integrated activity".

Arranges :class:`~immunopet.analysis.target_engagement.TargetEngagement` (the analysis' part
:attr:`~immunopet.analysis.results.StudyAnalysis.target_engagement`) into the body of the
section ``kinetics`` that :mod:`immunopet.report.html` renders with
``templates/section_kinetics.html.j2``. It formats and computes nothing new: every median,
range, test and judgement comes from the analysis.
"""

from __future__ import annotations

from typing import Any

from immunopet.analysis.results import StudyAnalysis
from immunopet.analysis.target_engagement import LESIONS, TargetEngagement
from immunopet.report._cells import (
    DASH,
    Cell,
    Figure,
    Table,
    format_cell,
    format_p_value,
    frame_table,
    has_rows,
    is_missing,
    same_precision,
    text_table,
)
from immunopet.report.style import organ_label

__all__ = ["kinetics_body"]


def _voi(voi: Any) -> str:
    return "Lesions (pooled)" if voi == LESIONS else organ_label(str(voi))


def _number(value: Any, column: str = "") -> str:
    """A Ki or VT to 2 decimals (2 significant digits below 0.01, as every table)."""
    return format_cell(value, column)


def _plain(value: Any) -> Cell:
    return Cell(format_cell(value), numeric=True, missing=is_missing(value))


def _median_iqr(record: dict[str, Any], prefix: str) -> Cell:
    median = record.get(f"{prefix}_median")
    if is_missing(median):
        return Cell(DASH, numeric=True, missing=True)
    text = _number(median)
    lower, upper = record.get(f"{prefix}_q1"), record.get(f"{prefix}_q3")
    return Cell(f"{text} ({same_precision(lower, text)}\u2013{same_precision(upper, text)})", True)


def _range(record: dict[str, Any], prefix: str) -> Cell:
    low, high = record.get(f"{prefix}_min"), record.get(f"{prefix}_max")
    if is_missing(low):
        return Cell(DASH, numeric=True, missing=True)
    return Cell(f"{_number(low)} to {_number(high)}", numeric=True)


def _summary_table(part: TargetEngagement) -> Table:
    rows = []
    for record in part.summary.to_dict("records"):
        rows.append(
            (
                _voi(record["voi"]),
                record["series"],
                Cell(format_cell(record["n_vois"], "n"), numeric=True),
                Cell(format_cell(record["n_fitted"], "n"), numeric=True),
                Cell(format_cell(record["n_low_r"], "n"), numeric=True),
                _median_iqr(record, "ki"),
                _range(record, "ki"),
                _median_iqr(record, "vt"),
                Cell(
                    format_cell(record["jauw_ki"]),
                    numeric=True,
                    missing=is_missing(record["jauw_ki"]),
                ),
                Cell(
                    format_cell(record["ki_median_over_jauw"]),
                    numeric=True,
                    missing=is_missing(record["ki_median_over_jauw"]),
                ),
            )
        )
    return text_table(
        [
            "VOI",
            "Series",
            "VOIs",
            "Fitted",
            f"r < {part.settings.min_r:g}",
            "Ki median (IQR)",
            "Ki range",
            "VT median (IQR)",
            "Non-specific Ki (Jauw)",
            "Median Ki / non-specific",
        ],
        rows,
        caption="Patlak Ki (\u00b5L\u00b7g\u207b\u00b9\u00b7h\u207b\u00b9) and VT (mL/g) per "
        "organ and series: medians with interquartile range over the fitted VOIs (one per "
        "patient for an organ); fits with a low r are included and counted. The lesion row "
        "pools every lesion of every patient (not independent).",
    )


def _paired_table(part: TargetEngagement) -> Table | None:
    if not has_rows(part.paired):
        return None
    reference, comparison = part.reference_series, part.comparison_series
    rows = []
    notes: dict[str, list[str]] = {}
    for record in part.paired.to_dict("records"):
        tested = not is_missing(record["p_value"])
        rows.append(
            (
                _voi(record["voi"]),
                Cell(format_cell(record["n_pairs"], "n"), numeric=True),
                Cell(_number(record["ki_median_reference"]), numeric=True),
                Cell(_number(record["ki_median_comparison"]), numeric=True),
                Cell(_number(record["median_difference"]), numeric=True),
                Cell(f"{record['n_lower']} of {record['n_pairs']}", numeric=True),
                Cell(
                    f"V = {format_cell(record['statistic'])}" if tested else DASH,
                    numeric=True,
                    missing=not tested,
                ),
                Cell(format_p_value(record["p_value"]), numeric=True, missing=not tested),
                record["method"] or DASH,
            )
        )
        if record["note"]:
            notes.setdefault(str(record["note"]), []).append(_voi(record["voi"]))
    return text_table(
        [
            "Organ",
            "Pairs",
            f"Ki {reference} (median)",
            f"Ki {comparison} (median)",
            "Median difference",
            f"Lower with {comparison}",
            "Statistic",
            "p",
            "Method",
        ],
        rows,
        caption=f"Paired comparison of organ Ki, {comparison} against {reference}, over the "
        "patients with a fitted Ki in both series (Wilcoxon signed-rank, two-sided; "
        f"difference = {comparison} \u2212 {reference}; at least {part.min_pairs} pairs for "
        "a test).",
        notes=[f"{', '.join(organs)}: {note}" for note, organs in notes.items()],
    )


def _residence_table(part: TargetEngagement) -> Table | None:
    summary = part.residence_summary
    if not has_rows(summary):
        return None
    rows = []
    for record in summary.to_dict("records"):
        median = format_cell(record["residence_time_h_median"])
        organ, source = organ_label(str(record["organ"])), str(record["source_organ"])
        rows.append(
            (
                organ if organ == source else f"{organ} ({source})",
                record["series"],
                Cell(format_cell(record["n"], "n"), numeric=True),
                Cell(median, numeric=True),
                Cell(
                    f"{same_precision(record['residence_time_h_min'], median)} to "
                    f"{same_precision(record['residence_time_h_max'], median)}",
                    numeric=True,
                ),
                Cell(format_cell(record["cumulated_activity_mbq_h_median"]), numeric=True),
                Cell(format_cell(record["tail_fraction_median"]), numeric=True),
            )
        )
    masses = ", ".join(
        f"{organ_label(organ).lower()} {mass:g} g"
        for organ, mass in part.dosimetry.organ_mass_g.items()
    )
    return text_table(
        [
            "Organ (source organ)",
            "Series",
            "n",
            "Residence time (h), median",
            "Range (h)",
            "Cumulated activity (MBq\u00b7h), median",
            "Share after the last scan",
        ],
        rows,
        caption="Residence time (time-integrated activity coefficient, MBq\u00b7h/MBq = h) "
        f"per organ and series, with the reference organ masses ({masses}; ICRP 89 adult "
        f"male) and tissue density {part.dosimetry.tissue_density_g_per_ml:g} g/mL; the "
        "per-patient table (residence_times.csv) is what OLINDA/EXM and IDAC-Dose take.",
    )


def _input_text(part: TargetEngagement) -> str:
    names = {"sampled": "sampled blood", "image": "image-derived (blood-pool VOI)"}
    used = [
        f"{names.get(k, k)}: {n}" for k, n in sorted(part.inputs.items()) if k in names and n > 0
    ]
    none = part.inputs.get("", 0)
    if none:
        used.append(f"none: {none}")
    return "; ".join(used) or DASH


def _caveats(part: TargetEngagement) -> list[str]:
    settings = part.settings
    baselines = ", ".join(f"{v:g} {organ_label(k).lower()}" for k, v in part.baselines.items())
    caveats = [
        f"A Patlak fit needs at least {settings.min_points} time points after one injection; "
        "VOIs with fewer have no Ki and are listed below with the reason. Fits with "
        f"r < {settings.min_r:g} are kept, counted and listed.",
        "Ki is the irreversible uptake: target-mediated uptake plus non-specific "
        "catabolism. Compare it with the non-specific baselines reported by Jauw et al. "
        f"(J Nucl Med 2019;60:1825; \u00b5L\u00b7g\u207b\u00b9\u00b7h\u207b\u00b9: {baselines}): "
        "they come from other antibodies and protocols and are indicative only. A predose "
        "of unlabelled antibody that lowers Ki towards the baseline shows target "
        "engagement.",
        f"Plasma input (fits per source): {_input_text(part)}; plasma/whole-blood ratio "
        f"{settings.plasma_to_blood_ratio:.3g} (whole-blood samples and the image-derived "
        f"input); tissue density {settings.tissue_density_g_per_ml:g} g/mL. An interpolated "
        "input between a 1 h and a 72 h point misses the early clearance and underestimates "
        "Ki.",
        "Time-integrated activity: the first scan's value held from injection, trapezoids "
        "between scans, physical decay only after the last scan (no biological clearance: "
        "an upper bound). The share after the last scan says how much of the number is "
        "extrapolated.",
    ]
    return caveats  # the analysis' own notes (poor lesion fits ...) follow the section


def kinetics_body(analysis: StudyAnalysis, figures: list[Figure]) -> dict[str, Any] | None:
    """The body of the section ``kinetics``, or None when the analysis has no such part.

    Parameters
    ----------
    analysis : StudyAnalysis
    figures : list of Figure
        The section's figures (``patlak``, ``ki_baselines``, ``residence``).
    """
    part = analysis.target_engagement
    if part is None:
        return None
    by_name = {f.name: f for f in figures}
    fitted = part.n_fitted
    sentence = (
        f"Patlak analysis of {len(part.fits)} VOIs (one per organ or lesion, patient and "
        f"injection): {fitted} fitted (at least {part.settings.min_points} time points and "
        "a plasma input)."
    )
    if fitted == 0:
        sentence += (
            f" No VOI has {part.settings.min_points} or more time points after one "
            "injection, so there is no Ki or VT; the time-integrated activity below is "
            "still computed."
        )
    flagged = part.flagged
    return {
        "sentence": sentence,
        "caveats": _caveats(part),
        "patlak_figures": [by_name[k] for k in ("patlak", "ki_baselines") if k in by_name],
        "summary": _summary_table(part) if fitted > 0 else None,
        "paired": _paired_table(part),
        "paired_absent": ""
        if has_rows(part.paired)
        else f"No organ has a fitted Ki in both the {part.reference_series} and the "
        f"{part.comparison_series} series of one patient: no paired comparison.",
        "flag_summary": frame_table(
            part.flag_summary,
            caption="Why VOIs have no Ki or are flagged: VOIs (patient, series, organ or "
            "lesion) per reason.",
            headers={"reason": "Reason", "fitted": "Ki computed", "n": "VOIs"},
            collapsed=False,
        )
        if has_rows(part.flag_summary)
        else None,
        "flagged": frame_table(
            flagged,
            caption=f"VOIs without a Ki or with a flag ({len(flagged)}), with the reason.",
            headers={
                "voi": "VOI",
                "n_points": "Time points",
                "ki_ul_per_g_per_h": "Ki (\u00b5L/g/h)",
                "r": "r",
                "flag": "Why",
            },
        )
        if has_rows(flagged)
        else None,
        "fits": frame_table(
            part.fits,
            caption="Every Patlak fit (kinetics.csv).",
            collapsed=True,
            headers={
                "voi": "VOI",
                "ki_ul_per_g_per_h": "Ki (\u00b5L/g/h)",
                "vt_ml_per_g": "VT (mL/g)",
                "r": "r",
                "n_points": "Time points",
            },
        )
        if fitted > 0
        else None,
        "residence_figures": [by_name[k] for k in ("residence",) if k in by_name],
        "residence": _residence_table(part),
        "residence_all": frame_table(
            part.residence,
            caption="Residence time of every organ, patient and series (residence_times.csv).",
            collapsed=True,
        )
        if has_rows(part.residence)
        else None,
        "tia_all": frame_table(
            part.tia,
            caption="Time-integrated activity coefficient per mL of every organ and lesion VOI "
            "(h/mL; time_integrated_activity.csv).",
            collapsed=True,
            headers={
                "voi": "VOI",
                "tiac_h_per_ml": "TIAC (h/mL)",
                "cumulated_activity_mbq_h_per_ml": "Cumulated activity (MBq\u00b7h/mL)",
                "tail_fraction": "Share after the last scan",
            },
        )
        if has_rows(part.tia)
        else None,
    }
