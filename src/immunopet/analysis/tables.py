"""The study's tables: baseline characteristics (Table 1) and adverse events (Table 2).

Counts are rendered as a journal prints them: ``"8 (62%)"`` and ``"26 of 102 (25%)"``, the
percentage rounded half up to whole percent unless more decimals are asked for (computed
with exact fractions, so 1 of 8 is 12.5 -> 13%, never 12% by binary rounding or
round-half-even).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Final, Literal

import numpy as np
import pandas as pd

from immunopet.analysis.clinical import (
    BOR_CATEGORIES,
    PDL1_GROUPS,
    group_pdl1,
    validate_adverse_events,
    validate_clinical,
)
from immunopet.errors import InputError

__all__ = [
    "BASELINE_COLUMNS",
    "SUMMARY_COLUMNS",
    "adverse_event_table",
    "baseline_summary",
    "baseline_table",
    "format_count",
    "format_n_of",
    "format_percent",
]

BASELINE_COLUMNS: Final = (
    "Patient no.",
    "Age (y)",
    "Sex",
    "Histology",
    "PD-L1 TPS (%)",
    "PD-L1 CPS (%)",
    "Treatment cycles (n)",
    "BOR",
    "Reason for treatment discontinuation",
    "PFS (d)",
    "OS (d)",
    "Note",
)
"""Columns of :func:`baseline_table` (Table 1 of seed 000, plus the sheet's note)."""

SUMMARY_COLUMNS: Final = (
    "characteristic",
    "category",
    "n",
    "percent",
    "median",
    "minimum",
    "maximum",
    "text",
)
"""Columns of :func:`baseline_summary`."""


# ---------------------------------------------------------------------------- formatting
def format_percent(n: int, total: int, *, decimals: int = 0) -> str:
    """``100 n / total`` rounded half up, as text without the % sign.

    Examples
    --------
    >>> format_percent(8, 13), format_percent(1, 8), format_percent(14, 102, decimals=1)
    ('62', '13', '13.7')
    """
    if total <= 0:
        raise InputError("total must be positive", tag="total", value=total, expected="> 0")
    if decimals < 0:
        raise InputError("decimals must be >= 0", tag="decimals", value=decimals)
    scaled = Fraction(100 * n, total) * 10**decimals
    rounded = math.floor(scaled + Fraction(1, 2))
    if decimals == 0:
        return str(rounded)
    sign = "-" if rounded < 0 else ""
    whole, part = divmod(abs(rounded), 10**decimals)
    return f"{sign}{whole}.{part:0{decimals}d}"


def format_count(n: int, total: int, *, decimals: int = 0) -> str:
    """``"n (p%)"`` with p = 100 n / total rounded half up.

    Examples
    --------
    >>> format_count(8, 13)
    '8 (62%)'
    """
    return f"{n} ({format_percent(n, total, decimals=decimals)}%)"


def format_n_of(n: int, total: int, *, decimals: int = 0) -> str:
    """``"n of total (p%)"``; ``"0 of 0"`` when there is nothing to count.

    Examples
    --------
    >>> format_n_of(26, 102), format_n_of(14, 102, decimals=1)
    ('26 of 102 (25%)', '14 of 102 (13.7%)')
    """
    if total == 0:
        return "0 of 0"
    return f"{n} of {total} ({format_percent(n, total, decimals=decimals)}%)"


def _number_text(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:g}"


# ---------------------------------------------------------------------------- Table 1
_NOTE_DURATION = re.compile(r"\b(PFS|OS)\s*(<\s*\d+(?:\.\d+)?)", re.IGNORECASE)


def _survival_text(days: float, event: object, endpoint: str, note: str) -> str:
    if event == 0:
        return "NR"
    for match in _NOTE_DURATION.finditer(note):
        if match.group(1).upper() == endpoint:
            return match.group(2).replace(" ", "")
    return _number_text(days)


def baseline_table(clinical: pd.DataFrame) -> pd.DataFrame:
    """One row per patient in the layout of Table 1 (every cell rendered as text).

    Parameters
    ----------
    clinical : pandas.DataFrame
        A clinical sheet (:func:`~immunopet.analysis.clinical.read_clinical`, or a frame it
        accepts; it is validated again).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BASELINE_COLUMNS`, rows in the sheet's order. TPS/CPS not evaluable
        read ``NE``; a censored PFS/OS (event 0) reads ``NR`` (not reached); a duration the
        sheet's note gives as a bound (``"PFS <15 d entered as 15"``) reads as the bound
        (``<15``); ``Note`` repeats the sheet's note.

    Raises
    ------
    ManifestError
        When the sheet is invalid (see :func:`~immunopet.analysis.clinical.validate_clinical`).

    Examples
    --------
    >>> sheet = pd.DataFrame({"patient": ["3"], "age": [75], "sex": ["F"],
    ...     "histology": ["Adenocarcinoma"], "tps_percent": [0], "cps_percent": [7.5],
    ...     "treatment_cycles": [1], "bor": ["PD"], "stop_reason": ["PD"], "pfs_days": [15],
    ...     "pfs_event": [1], "os_days": [63], "os_event": [1],
    ...     "note": ["PFS <15 d entered as 15"]})
    >>> baseline_table(sheet).iloc[0, :11].tolist()
    ['3', '75', 'F', 'Adenocarcinoma', '0', '7.5', '1', 'PD', 'PD', '<15', '63']
    """
    sheet = validate_clinical(clinical)
    rows = []
    for record in sheet.itertuples(index=False):
        note = str(record.note)
        rows.append(
            (
                str(record.patient),
                _number_text(float(record.age)),
                str(record.sex),
                str(record.histology),
                "NE" if record.tps_ne else _number_text(float(record.tps_percent)),
                "NE" if record.cps_ne else _number_text(float(record.cps_percent)),
                str(int(record.treatment_cycles)),
                str(record.bor),
                str(record.stop_reason),
                _survival_text(float(record.pfs_days), record.pfs_event, "PFS", note),
                _survival_text(float(record.os_days), record.os_event, "OS", note),
                note,
            )
        )
    return pd.DataFrame.from_records(rows, columns=list(BASELINE_COLUMNS))


def _count_rows(
    characteristic: str, values: pd.Series, order: Sequence[str], total: int
) -> list[dict[str, object]]:
    counts = values.value_counts()
    rows: list[dict[str, object]] = []
    for category in order:
        n = int(counts.get(category, 0))
        rows.append(
            {
                "characteristic": characteristic,
                "category": category,
                "n": n,
                "percent": 100.0 * n / total,
                "text": format_count(n, total),
            }
        )
    return rows


def _by_frequency(values: pd.Series) -> list[str]:
    counts = values.value_counts()
    return sorted(counts.index, key=lambda k: (-int(counts[k]), str(k)))


def _range_row(characteristic: str, values: pd.Series) -> dict[str, object]:
    data = values.dropna().astype("float64")
    median, low, high = float(data.median()), float(data.min()), float(data.max())
    return {
        "characteristic": characteristic,
        "category": "median (range)",
        "n": len(data),
        "median": median,
        "minimum": low,
        "maximum": high,
        "text": f"{median:g} ({low:g}–{high:g})",
    }


def baseline_summary(clinical: pd.DataFrame) -> pd.DataFrame:
    """The cohort in a few lines: median age and range, counts by sex, histology, BOR, ...

    Parameters
    ----------
    clinical : pandas.DataFrame
        A clinical sheet (validated again).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`, one row per line of the summary, in this order:
        ``Patients``; ``Age (y)`` and ``Treatment cycles (n)`` as median (range) (numbers
        in ``median``, ``minimum``, ``maximum``); ``Sex``, ``Histology`` and ``Reason for
        treatment discontinuation`` by frequency (ties alphabetical); ``BOR`` in RECIST order
        (CR, PR, SD, PD, NE; categories present only); ``PD-L1 TPS``/``PD-L1 CPS`` in the
        groups of :data:`~immunopet.analysis.clinical.PDL1_GROUPS` then ``NE`` (when
        present). Counts have ``n``, ``percent`` (of all patients, unrounded) and ``text``
        (``"9 (69%)"``). A median is the middle value (mean of the two middle values for an
        even count).

    Examples
    --------
    >>> sheet = pd.DataFrame({"patient": ["A", "B"], "age": [53, 79], "sex": ["M", "F"],
    ...     "histology": ["Adenocarcinoma"] * 2, "tps_percent": ["0", "NE"],
    ...     "cps_percent": [0, 90], "treatment_cycles": [1, 22], "bor": ["PD", "PR"],
    ...     "stop_reason": ["PD", "Toxicity"], "pfs_days": [19, 684], "pfs_event": [1, 1],
    ...     "os_days": [19, 800], "os_event": [1, 0]})
    >>> summary = baseline_summary(sheet)
    >>> summary.loc[summary["characteristic"] == "Age (y)", "text"].item()
    '66 (53–79)'
    """
    sheet = validate_clinical(clinical)
    total = len(sheet)
    if total == 0:
        raise InputError("the clinical sheet has no patients", file="clinical", tag="patient")
    rows: list[dict[str, object]] = [
        {"characteristic": "Patients", "category": "", "n": total, "text": str(total)}
    ]
    rows.append(_range_row("Age (y)", sheet["age"]))
    rows += _count_rows("Sex", sheet["sex"], _by_frequency(sheet["sex"]), total)
    rows += _count_rows("Histology", sheet["histology"], _by_frequency(sheet["histology"]), total)
    for name, column, flag in (
        ("PD-L1 TPS", "tps_percent", "tps_ne"),
        ("PD-L1 CPS", "cps_percent", "cps_ne"),
    ):
        groups = group_pdl1(sheet[column]).astype(object).where(~sheet[flag], "NE")
        order = [*PDL1_GROUPS, *(["NE"] if bool(sheet[flag].any()) else [])]
        rows += _count_rows(name, groups.astype(str), order, total)
    rows.append(_range_row("Treatment cycles (n)", sheet["treatment_cycles"]))
    present = [c for c in BOR_CATEGORIES if c in set(sheet["bor"])]
    rows += _count_rows("BOR", sheet["bor"], present, total)
    stops = sheet["stop_reason"].replace("", "(ongoing)")
    rows += _count_rows("Reason for treatment discontinuation", stops, _by_frequency(stops), total)
    out = pd.DataFrame.from_records(rows)
    for column in SUMMARY_COLUMNS:
        if column not in out.columns:
            out[column] = np.nan
    out["n"] = out["n"].astype("int64")
    return out.loc[:, list(SUMMARY_COLUMNS)]


# ---------------------------------------------------------------------------- Table 2
def adverse_event_table(
    adverse_events: pd.DataFrame,
    n_patients: int,
    *,
    order: Literal["frequency", "input", "alphabetical"] | Sequence[str] = "frequency",
    blank_zero: bool = True,
    decimals: int = 0,
) -> pd.DataFrame:
    """Adverse events by term: patients with any grade and with grade 3 or 4, n (%).

    Parameters
    ----------
    adverse_events : pandas.DataFrame
        One row per patient and event (``patient``, ``term``, ``grade``; see
        :func:`~immunopet.analysis.clinical.read_adverse_events`; validated again). Terms are
        compared exactly (after stripping spaces).
    n_patients : int
        The denominator: patients at risk (all patients of the safety population, also those
        without any event). Required; the study had 13.
    order : {"frequency", "input", "alphabetical"} or sequence of str
        Row order. ``"frequency"`` (default): any grade descending, then grade 3-4
        descending, then term. ``"input"``: first appearance. ``"alphabetical"``. A sequence
        of terms (e.g. the paper's order) puts those terms first in that order (terms not
        present are skipped) and the rest after them by frequency.
    blank_zero : bool
        Leave a grade 3-4 (or grade 5) cell empty when no patient had it, as the paper does.
    decimals : int
        Decimals of the percentages.

    Returns
    -------
    pandas.DataFrame
        Text columns ``Adverse event``, ``Any grade``, ``Grade 3 or 4`` (and ``Grade 5`` only
        when a grade-5 event occurred), then numbers ``n_any``, ``percent_any``,
        ``n_grade_3_4``, ``percent_grade_3_4``, ``n_grade_5``, ``percent_grade_5``
        (unrounded %).

    Raises
    ------
    InputError
        When ``n_patients`` is not a positive whole number, is less than the number of
        patients with events, or ``order`` is unknown; ManifestError when the list is invalid.

    Notes
    -----
    A patient counts once per term, at the highest grade recorded for that term: in ``Any
    grade`` always, in ``Grade 3 or 4`` when that highest grade is 3 or 4, in ``Grade 5``
    when it is 5 (a death counts in neither grade-3-4 nor a second time).

    Examples
    --------
    >>> events = pd.DataFrame({"patient": ["1", "1", "2"], "term": ["Pain"] * 3,
    ...                        "grade": [1, 3, 2]})
    >>> adverse_event_table(events, 13).iloc[:, :3].values.tolist()
    [['Pain', '2 (15%)', '1 (8%)']]
    """
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise InputError("n_patients must be a whole number", tag="n_patients", value=n_patients)
    if n_patients <= 0:
        raise InputError("n_patients must be positive", tag="n_patients", value=n_patients)
    events = validate_adverse_events(adverse_events)
    with_events = events["patient"].nunique()
    if with_events > n_patients:
        raise InputError(
            "more patients with adverse events than patients in the denominator",
            tag="n_patients",
            value=int(n_patients),
            expected=f">= {with_events} (patients in the adverse-event list)",
        )
    columns = ["term", "n_any", "n_grade_3_4", "n_grade_5"]
    if events.empty:
        worst = pd.DataFrame(columns=["patient", "term", "grade"])
    else:
        worst = events.groupby(["patient", "term"], sort=False, as_index=False)["grade"].max()
    first_seen = {term: i for i, term in enumerate(dict.fromkeys(events["term"]))}
    counts = pd.DataFrame(
        [
            (
                term,
                len(group),
                int(group["grade"].between(3, 4).sum()),
                int((group["grade"] == 5).sum()),
            )
            for term, group in worst.groupby("term", sort=False)
        ],
        columns=columns,
    )
    frequency = counts.sort_values(
        ["n_any", "n_grade_3_4", "term"], ascending=[False, False, True], kind="stable"
    )
    if isinstance(order, str):
        if order == "frequency":
            counts = frequency
        elif order == "input":
            counts = counts.sort_values("term", key=lambda s: s.map(first_seen), kind="stable")
        elif order == "alphabetical":
            counts = counts.sort_values("term", kind="stable")
        else:
            raise InputError(
                "unknown order",
                tag="order",
                value=order,
                expected="'frequency', 'input', 'alphabetical' or a sequence of terms",
            )
    else:
        wanted = [str(t).strip() for t in order]
        rank = {term: i for i, term in enumerate(dict.fromkeys(wanted))}
        listed = counts[counts["term"].isin(rank)].sort_values(
            "term", key=lambda s: s.map(rank), kind="stable"
        )
        counts = pd.concat([listed, frequency[~frequency["term"].isin(rank)]])
    counts = counts.reset_index(drop=True)

    def text(n: int) -> str:
        return "" if (blank_zero and n == 0) else format_count(n, n_patients, decimals=decimals)

    out = pd.DataFrame(
        {
            "Adverse event": counts["term"].astype(str),
            "Any grade": [
                format_count(int(n), n_patients, decimals=decimals) for n in counts["n_any"]
            ],
            "Grade 3 or 4": [text(int(n)) for n in counts["n_grade_3_4"]],
        }
    )
    if bool((counts["n_grade_5"] > 0).any()):
        out["Grade 5"] = [text(int(n)) for n in counts["n_grade_5"]]
    for name in ("any", "grade_3_4", "grade_5"):
        n = counts[f"n_{name}"].astype("int64")
        out[f"n_{name}"] = n
        out[f"percent_{name}"] = 100.0 * n / n_patients
    return out
