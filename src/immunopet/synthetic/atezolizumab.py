"""The cohort of the synthetic 89Zr-atezolizumab trial (seed 001, Bensch et al. 2018).

22 patients with three tumour types, imaged once (one injection, no predose) before
atezolizumab. The abstract states the cohort size, the three tumour types, the
heterogeneity of tumour uptake within and among lesions, patients and tumour types, high
uptake in lymphoid tissue and at inflammation, and that response was better correlated with
pre-treatment PET than with IHC or RNA-seq biomarkers. Everything else here is this package's
assumption, stated so that it can be checked and changed:

* tumour types: 9 bladder cancer, 9 NSCLC, 4 triple-negative breast cancer (TNBC);
* best overall response (RECIST 1.1) fixed per patient (:data:`COHORT`): 6 responders
  (1 CR, 5 PR), 7 SD, 9 PD;
* lesion uptake (true rim SUV at the 120 h reference of the uptake curve; day 7 = 0.95 of it)
  is log-normal:
  :math:`\\log s = \\log(S_{type} F_{BOR}) + b_p + e_l` with :data:`TYPE_LESION_SUV`,
  :data:`BOR_FACTOR`, :math:`b_p \\sim N(0, \\sigma_p^2)`, :math:`e_l \\sim N(0, \\sigma_l^2)`
  (:data:`SIGMA_PATIENT`, :data:`SIGMA_LESION`); written to ``truth/heterogeneity.csv``;
* PD-L1 TPS and CPS (%), and an RNA-seq score (a z-scored effector-T-cell/PD-L1
  signature, ``rnaseq_score``) depend only weakly on response; PET depends on it strongly
  through :data:`BOR_FACTOR` (the study's finding, by construction);
* PFS and OS (days) are log-normal around medians per BOR, censored at an administrative
  follow-up of :data:`FOLLOW_UP_DAYS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BOR_FACTOR",
    "COHORT",
    "FOLLOW_UP_DAYS",
    "SIGMA_LESION",
    "SIGMA_PATIENT",
    "TYPE_LESION_SUV",
    "CohortRow",
    "heterogeneity_truth",
    "make_cohort_sheet",
    "patient_level_suv",
]


@dataclass(frozen=True)
class CohortRow:
    """One patient of the design: tumour type, sex and best overall response."""

    tumour_type: str
    sex: str
    bor: str


def _rows(tumour_type: str, sexes: str, bors: tuple[str, ...]) -> tuple[CohortRow, ...]:
    return tuple(CohortRow(tumour_type, s, b) for s, b in zip(sexes, bors, strict=True))


COHORT: tuple[CohortRow, ...] = (
    *_rows("bladder", "MMFMMMFMM", ("CR", "PR", "PR", "SD", "PD", "PD", "SD", "PD", "PD")),
    *_rows("NSCLC", "MFMMFMFMM", ("PR", "PR", "SD", "SD", "PD", "PD", "SD", "PD", "SD")),
    *_rows("TNBC", "FFFF", ("PR", "SD", "PD", "PD")),
)
"""The 22 patients in pseudonym order (P01-P09 bladder, P10-P18 NSCLC, P19-P22 TNBC)."""

TYPE_LESION_SUV: dict[str, float] = {"bladder": 9.0, "NSCLC": 6.5, "TNBC": 4.5}
"""Median true tumour SUV (120 h reference) of a patient with stable disease, per tumour type."""

BOR_FACTOR: dict[str, float] = {"CR": 1.8, "PR": 1.6, "SD": 1.0, "PD": 0.6, "NE": 1.0}
"""Uptake relative to stable disease, per best overall response."""

SIGMA_PATIENT = 0.25
"""SD of the patient effect on log uptake (beyond tumour type and response)."""

SIGMA_LESION = 0.35
"""SD of the lesion effect on log uptake (within a patient)."""

FOLLOW_UP_DAYS = 540
"""Administrative censoring (days after the start of treatment)."""

_PFS_MEDIAN = {"CR": 600.0, "PR": 330.0, "SD": 150.0, "PD": 50.0, "NE": 90.0}
_OS_EXTRA = {"CR": 400.0, "PR": 300.0, "SD": 200.0, "PD": 120.0, "NE": 150.0}
_RESPONDER = ("CR", "PR")


def _percent(value: float) -> float:
    return float(np.clip(round(value / 5.0) * 5.0, 0.0, 100.0))


def make_cohort_sheet(pseudonyms: tuple[str, ...], rng: np.random.Generator) -> pd.DataFrame:
    """The clinical sheet of the atezolizumab cohort.

    Parameters
    ----------
    pseudonyms : tuple of str
        One per row of :data:`COHORT` taken in order (fewer is allowed: the first rows).
    rng : numpy.random.Generator
        Draws age, IHC scores, the RNA-seq score and survival.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``age``, ``sex``, ``tumour_type``, ``histology``,
        ``tps_percent``, ``cps_percent``, ``rnaseq_score``, ``treatment_cycles``, ``bor``,
        ``stop_reason``, ``pfs_days``, ``pfs_event``, ``os_days``, ``os_event``, ``note``.

    Examples
    --------
    >>> sheet = make_cohort_sheet(("P01", "P02"), np.random.default_rng(0))
    >>> sheet[["patient", "tumour_type", "bor"]].values.tolist()
    [['P01', 'bladder', 'CR'], ['P02', 'bladder', 'PR']]
    """
    histology = {
        "bladder": "Urothelial carcinoma",
        "NSCLC": "Adenocarcinoma",
        "TNBC": "Triple-negative breast cancer",
    }
    records = []
    for pseudonym, row in zip(pseudonyms, COHORT, strict=False):
        responder = row.bor in _RESPONDER
        # IHC: PD-L1 positive (TPS >= 1 %) in 40 % of non-responders, 60 % of responders
        positive = rng.random() < (0.6 if responder else 0.4)
        tps = _percent(rng.uniform(1.0, 80.0)) if positive else 0.0
        cps = _percent(max(tps, rng.uniform(0.0, 30.0) + (10.0 if responder else 0.0)))
        rnaseq = float(rng.normal(0.5 if responder else 0.0, 1.0))
        pfs = float(_PFS_MEDIAN[row.bor] * math.exp(rng.normal(0.0, 0.4)))
        os_days = pfs + float(_OS_EXTRA[row.bor] * math.exp(rng.normal(0.0, 0.4)))
        pfs_event = int(pfs < FOLLOW_UP_DAYS)
        os_event = int(os_days < FOLLOW_UP_DAYS)
        note = "; ".join(
            text
            for text, censored in (("PFS censored", not pfs_event), ("OS censored", not os_event))
            if censored
        )
        records.append(
            {
                "patient": pseudonym,
                "age": int(rng.integers(38, 79)),
                "sex": row.sex,
                "tumour_type": row.tumour_type,
                "histology": histology[row.tumour_type],
                "tps_percent": tps,
                "cps_percent": cps,
                "rnaseq_score": round(rnaseq, 3),
                "treatment_cycles": max(1, round(min(pfs, FOLLOW_UP_DAYS) / 21.0)),
                "bor": row.bor,
                "stop_reason": "PD" if pfs_event else "ongoing",
                "pfs_days": round(min(pfs, FOLLOW_UP_DAYS)),
                "pfs_event": pfs_event,
                "os_days": round(min(os_days, FOLLOW_UP_DAYS)),
                "os_event": os_event,
                "note": note,
            }
        )
    return pd.DataFrame(records)


def patient_level_suv(row: CohortRow, rng: np.random.Generator) -> float:
    """Median true tumour SUV (120 h reference) of one patient: type x BOR x patient effect.

    Examples
    --------
    >>> round(patient_level_suv(COHORT[0], np.random.default_rng(0)), 2)
    16.72
    """
    return (
        TYPE_LESION_SUV[row.tumour_type]
        * BOR_FACTOR[row.bor]
        * float(np.exp(rng.normal(0.0, SIGMA_PATIENT)))
    )


def heterogeneity_truth() -> pd.DataFrame:
    """The variance components of log tumour uptake the generator draws from.

    The tumour-type variance is that of the log type levels (:data:`TYPE_LESION_SUV`,
    weighted by the patients per type); BOR adds between-patient variance on top of
    :data:`SIGMA_PATIENT` (computed from :data:`COHORT`, within type).

    Returns
    -------
    pandas.DataFrame
        ``level`` (``tumour_type``, ``patient``, ``lesion``), ``variance`` (of the natural
        log), ``source``.
    """
    types = pd.Series([r.tumour_type for r in COHORT])
    log_type = types.map({k: math.log(v) for k, v in TYPE_LESION_SUV.items()})
    log_bor = pd.Series([math.log(BOR_FACTOR[r.bor]) for r in COHORT])
    within_type_bor = float(log_bor.groupby(types).transform(lambda s: s - s.mean()).var(ddof=0))
    return pd.DataFrame(
        [
            {
                "level": "tumour_type",
                "variance": float(log_type.var(ddof=0)),
                "source": "log TYPE_LESION_SUV over the cohort's patients",
            },
            {
                "level": "patient",
                "variance": SIGMA_PATIENT**2 + within_type_bor,
                "source": "SIGMA_PATIENT^2 + variance of log BOR_FACTOR within type",
            },
            {
                "level": "lesion",
                "variance": SIGMA_LESION**2,
                "source": "SIGMA_LESION^2 (true rim SUV; measured SUVmax adds noise)",
            },
        ]
    )
