"""Clinical sheet, adverse events and blood samples of the synthetic trial.

For the ``study`` preset the clinical sheet is Table 1 of the 89Zr-durvalumab study (seed 000;
published aggregate trial data) with patient numbers replaced by pseudonyms ``P01``..``P13``,
and the adverse-event list reproduces the patient counts of its Table 2. Smaller presets draw
their clinical rows from the same table.

Survival columns: ``NR`` (not reached) is censored (event 0) at an assumed last follow-up that
the paper does not publish (:data:`NR_FOLLOW_UP_DAYS`); PFS ``<15`` is entered as 15 with a
note. Any published day count is an event. Medians (PFS 41 d = 1.3 mo, OS 147 d = 4.8 mo) do not
depend on the assumed follow-ups because every censored time lies beyond the median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

__all__ = [
    "ADVERSE_EVENT_COUNTS",
    "CLINICAL_COLUMNS",
    "HEMATOCRIT",
    "NR_FOLLOW_UP_DAYS",
    "TABLE1",
    "BloodSchedule",
    "CounterCalibration",
    "draw_adverse_events",
    "make_blood_samples",
    "make_clinical_sheet",
    "plasma_percent_ia_per_l",
]


@dataclass(frozen=True)
class _Row:
    age: int
    sex: str
    histology: str
    tps: str
    cps: str
    cycles: int
    bor: str
    stop: str
    pfs: str
    os: str


TABLE1: tuple[_Row, ...] = (
    _Row(59, "F", "Adenocarcinoma", "0", "12.5", 7, "SD", "PD", "86", "823"),
    _Row(53, "M", "Adenocarcinoma", "0", "0", 1, "PD", "PD", "19", "19"),
    _Row(75, "F", "Adenocarcinoma", "0", "7.5", 1, "PD", "PD", "<15", "63"),
    _Row(79, "M", "Adenocarcinoma", "100", "100", 2, "PD", "PD", "34", "40"),
    _Row(77, "M", "Adenocarcinoma", "0", "5", 2, "PD", "PD", "22", "147"),
    _Row(57, "F", "Squamous cell carcinoma", "1", "5", 10, "SD", "PD", "154", "182"),
    _Row(54, "M", "Adenocarcinoma", "100", "90", 14, "PR", "PD", "183", "NR"),
    _Row(70, "M", "Squamous cell carcinoma", "NE", "NE", 9, "PR", "Toxicity", "684", "NR"),
    _Row(70, "M", "Adenocarcinoma", "0", "NE", 1, "PD", "PD", "9", "15"),
    _Row(64, "M", "Adenocarcinoma", "0", "0", 1, "PD", "PD", "2", "2"),
    _Row(72, "M", "Adenocarcinoma", "1", "25", 22, "NE", "COVID-19 pandemic", "NR", "NR"),
    _Row(72, "F", "Not otherwise specified", "100", "90", 12, "PR", "Toxicity", "NR", "NR"),
    _Row(69, "M", "Squamous cell carcinoma", "0", "0", 3, "PD", "PD", "41", "78"),
)
"""Table 1 of seed 000, one row per patient in the published order."""

NR_FOLLOW_UP_DAYS: dict[tuple[int, str], int] = {
    (7, "os"): 760,
    (8, "os"): 800,
    (11, "pfs"): 330,
    (11, "os"): 600,
    (12, "pfs"): 560,
    (12, "os"): 620,
}
"""Assumed censoring day for each NR entry, by (patient number, endpoint); not published."""

CLINICAL_COLUMNS = (
    "patient",
    "age",
    "sex",
    "histology",
    "tps_percent",
    "cps_percent",
    "treatment_cycles",
    "bor",
    "stop_reason",
    "pfs_days",
    "pfs_event",
    "os_days",
    "os_event",
    "note",
)

ADVERSE_EVENT_COUNTS: tuple[tuple[str, int, int], ...] = (
    ("Anemia", 8, 1),
    ("Thrombocytopenia", 5, 0),
    ("Alkaline phosphatase increased", 6, 0),
    ("GGT increased", 3, 0),
    ("Aspartate aminotransferase increased", 1, 0),
    ("Hypercalcemia", 1, 0),
    ("Hypomagnesemia", 2, 0),
    ("Cough", 3, 0),
    ("Dyspnea", 3, 1),
    ("Pneumonia", 1, 1),
    ("Pain", 7, 1),
    ("Anorexia", 4, 1),
    ("Constipation", 1, 0),
    ("Epistaxis", 1, 0),
    ("Acute kidney injury", 1, 0),
    ("Superior vena cava syndrome", 1, 1),
)
"""Table 2 of seed 000: (CTCAE v4.0 term, patients with any grade, patients with grade 3-4)."""

HEMATOCRIT = 0.40
"""Blood volume fraction of red cells; the antibody stays in plasma."""


def _survival(number: int, endpoint: str, text: str) -> tuple[int, int, str]:
    if text == "NR":
        return NR_FOLLOW_UP_DAYS[(number, endpoint)], 0, f"{endpoint.upper()} NR: censored"
    if text.startswith("<"):
        return int(text[1:]), 1, f"{endpoint.upper()} {text} d entered as {text[1:]}"
    return int(text), 1, ""


def make_clinical_sheet(pseudonyms: tuple[str, ...], rows: tuple[int, ...]) -> pd.DataFrame:
    """The clinical sheet shaped like Table 1.

    Parameters
    ----------
    pseudonyms : tuple of str
        Patient pseudonyms in output order (``P01`` ...).
    rows : tuple of int
        1-based row of :data:`TABLE1` each pseudonym takes.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CLINICAL_COLUMNS`; ``tps_percent``/``cps_percent`` are strings
        (``"NE"`` when not evaluable), events are 1 (event) or 0 (censored).

    Examples
    --------
    >>> sheet = make_clinical_sheet(("P01", "P02"), (1, 11))
    >>> sheet[["patient", "bor", "pfs_days", "pfs_event"]].values.tolist()
    [['P01', 'SD', 86, 1], ['P02', 'NE', 330, 0]]
    """
    records = []
    for pseudonym, number in zip(pseudonyms, rows, strict=True):
        row = TABLE1[number - 1]
        pfs, pfs_event, pfs_note = _survival(number, "pfs", row.pfs)
        os_days, os_event, os_note = _survival(number, "os", row.os)
        note = "; ".join(n for n in (pfs_note, os_note) if n)
        if number == 9:
            note = "; ".join(n for n in (note, "TPS from cytology") if n)
        records.append(
            (
                pseudonym,
                row.age,
                row.sex,
                row.histology,
                row.tps,
                row.cps,
                row.cycles,
                row.bor,
                row.stop,
                pfs,
                pfs_event,
                os_days,
                os_event,
                note,
            )
        )
    return pd.DataFrame.from_records(records, columns=list(CLINICAL_COLUMNS))


def draw_adverse_events(pseudonyms: tuple[str, ...], rng: np.random.Generator) -> pd.DataFrame:
    """Adverse events whose patient counts reproduce Table 2 (scaled to the cohort size).

    Each term is given to ``n_any`` distinct patients (one row each, the worst grade); ``n_34``
    of them have grade 3 or 4, the others grade 1 or 2. With fewer than 13 patients the counts
    are scaled down proportionally (rounded half up, at most the cohort size).

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``term``, ``grade``, ``ctcae_version`` (``"4.0"``).

    Examples
    --------
    >>> ids = tuple(f"P{i:02d}" for i in range(1, 14))
    >>> events = draw_adverse_events(ids, np.random.default_rng(0))
    >>> int((events["term"] == "Anemia").sum()), int(((events["term"] == "Anemia")
    ...     & (events["grade"] >= 3)).sum())
    (8, 1)
    """
    n = len(pseudonyms)
    records = []
    for term, n_any, n_34 in ADVERSE_EVENT_COUNTS:
        if n != 13:
            n_any = min(n, math.floor(n_any * n / 13 + 0.5))
            n_34 = min(n_any, math.floor(n_34 * n / 13 + 0.5))
        chosen = sorted(rng.choice(n, size=n_any, replace=False).tolist())
        severe = set(rng.choice(chosen, size=n_34, replace=False).tolist()) if n_34 else set()
        for index in chosen:
            grade = int(rng.integers(3, 5)) if index in severe else int(rng.integers(1, 3))
            records.append((pseudonyms[index], term, grade, "4.0"))
    frame = pd.DataFrame.from_records(
        records, columns=["patient", "term", "grade", "ctcae_version"]
    )
    return frame.sort_values(["patient", "term"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class CounterCalibration:
    """Gamma counter calibration for 89Zr.

    Attributes
    ----------
    cpm_per_bq : float, cpm/Bq
        Net counts per minute per becquerel in the sample (efficiency x 60 s/min).
    nuclide : str
    half_life_s : float, s
    """

    cpm_per_bq: float = 18.6
    nuclide: str = "89Zr"
    half_life_s: float = 78.41 * 3600.0


@dataclass(frozen=True)
class BloodSchedule:
    """Sampling times of one series, hours after injection."""

    hours: tuple[float, ...]

    @classmethod
    def for_protocol(cls, extensive: bool) -> BloodSchedule:
        """5, 30, 60, 120 min and days 3, 5, 7 (extensive) or 5, 30 min and days 3, 5.

        Examples
        --------
        >>> BloodSchedule.for_protocol(False).hours
        (0.0833, 0.5, 72.0, 120.0)
        """
        if extensive:
            return cls((0.0833, 0.5, 1.0, 2.0, 72.0, 120.0, 168.0))
        return cls((0.0833, 0.5, 72.0, 120.0))


def plasma_percent_ia_per_l(blood_pool_suv: float, weight_kg: float) -> float:
    """Plasma activity (%IA/L) implied by a blood-pool SUV.

    Whole blood holds ``SUV / W[g]`` of the injected activity per mL, i.e.
    ``SUV x 100 / W[kg]`` %IA/L; plasma holds it all in ``1 - HEMATOCRIT`` of the volume.

    Examples
    --------
    >>> round(plasma_percent_ia_per_l(6.0, 100.0), 6)  # 6 %IA/L blood / 0.6
    10.0
    """
    return blood_pool_suv * 100.0 / weight_kg / (1.0 - HEMATOCRIT)


def make_blood_samples(
    *,
    patient: str,
    series: str,
    injection: datetime,
    injected_activity_bq: float,
    weight_kg: float,
    schedule: BloodSchedule,
    blood_pool_suv: tuple[float, ...],
    calibration: CounterCalibration,
    rng: np.random.Generator,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Counted blood samples of one series and their true values.

    Samples are counted together 1-3 days after the last one, so the counts need decay
    correction back to the sampling time and then to injection. Counts carry 2 % noise.

    Parameters
    ----------
    blood_pool_suv : tuple of float
        True blood-pool SUV at each ``schedule.hours``.

    Returns
    -------
    (rows, truth)
        ``rows`` for ``blood_samples.csv`` and ``truth`` for ``truth/blood.csv``.
    """
    half_life_s = calibration.half_life_s
    last = injection + timedelta(hours=max(schedule.hours))
    counting = (last + timedelta(hours=float(rng.uniform(24.0, 72.0)))).replace(
        second=0, microsecond=0
    )
    rows: list[dict[str, object]] = []
    truth: list[dict[str, object]] = []
    for number, (hours, suv) in enumerate(zip(schedule.hours, blood_pool_suv, strict=True), 1):
        sampled = injection + timedelta(minutes=round(hours * 60.0))
        exact_hours = (sampled - injection).total_seconds() / 3600.0
        blood_bq_per_ml = suv * injected_activity_bq / (weight_kg * 1000.0)  # at injection
        plasma_bq_per_ml = blood_bq_per_ml / (1.0 - HEMATOCRIT)
        decay = 2.0 ** (-(counting - injection).total_seconds() / half_life_s)
        noise = rng.normal(1.0, 0.02, 2)
        rows.append(
            {
                "patient": patient,
                "series": series,
                "sample": number,
                "injection_datetime": injection.isoformat(),
                "sample_datetime": sampled.isoformat(),
                "counting_datetime": counting.isoformat(),
                "injected_activity_bq": injected_activity_bq,
                "whole_blood_cpm_per_ml": round(
                    blood_bq_per_ml * decay * calibration.cpm_per_bq * noise[0], 1
                ),
                "plasma_cpm_per_ml": round(
                    plasma_bq_per_ml * decay * calibration.cpm_per_bq * noise[1], 1
                ),
            }
        )
        truth.append(
            {
                "patient": patient,
                "series": series,
                "sample": number,
                "hours_pi": round(exact_hours, 4),
                "blood_pool_suv": suv,
                "plasma_percent_ia_per_l": plasma_percent_ia_per_l(suv, weight_kg),
            }
        )
    return rows, truth
