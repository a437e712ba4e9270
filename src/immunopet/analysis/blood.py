"""Blood samples counted in a well counter: counts -> activity concentration, %IA/L and SUV.

Venous samples of an 89Zr study are usually counted together, days after the last one was
drawn. A sample's counts therefore need two decay corrections: from the counting time back to
the time the sample was drawn (its activity *then*), and from the counting time back to the
injection (the convention of the study reports, where blood activity is given as % injected
activity per litre decay-corrected to injection). Intervals use whole date-times, so a sample
counted 7.7 days after the injection is corrected for 7.7 days, never for the time of day
alone.

Input tables (see :func:`read_blood_samples`):

``blood_samples.csv``
    One row per sample: ``patient``, ``series``, ``sample``, ``injection_datetime``,
    ``sample_datetime``, ``counting_datetime`` (ISO 8601, timezone-naive, one clock),
    ``injected_activity_bq`` (activity at injection, Bq), ``whole_blood_cpm_per_ml`` and
    ``plasma_cpm_per_ml`` (net counts per minute per mL at ``counting_datetime``; either may
    be empty when that matrix was not counted).
``counter_calibration.json``
    ``{"cpm_per_bq": 18.6, "half_life_s": 282276.0, "nuclide": "89Zr"}``; ``half_life_s``
    may be left out when ``nuclide`` names a known radionuclide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from immunopet.errors import InputError
from immunopet.io.jsonfile import read_json_object
from immunopet.suv.nuclides import find_nuclide
from immunopet.suv.samples import (
    decay_correct_back,
    percent_injected_activity_per_litre,
    suv_of_concentration,
)

__all__ = [
    "BLOOD_ACTIVITY_COLUMNS",
    "BLOOD_SAMPLE_COLUMNS",
    "COMPARISON_COLUMNS",
    "CounterCalibration",
    "Matrix",
    "blood_activity",
    "blood_sample_problems",
    "compare_with_image",
    "read_blood_samples",
    "read_counter_calibration",
]

Matrix = Literal["whole_blood", "plasma"]

BLOOD_SAMPLE_COLUMNS = (
    "patient",
    "series",
    "sample",
    "injection_datetime",
    "sample_datetime",
    "counting_datetime",
    "injected_activity_bq",
    "whole_blood_cpm_per_ml",
    "plasma_cpm_per_ml",
)
"""Columns a blood-sample table must have (others are kept but not used)."""

_MATRIX_COLUMNS: dict[str, str] = {
    "whole_blood": "whole_blood_cpm_per_ml",
    "plasma": "plasma_cpm_per_ml",
}
_DATETIME_COLUMNS = ("injection_datetime", "sample_datetime", "counting_datetime")
_TEXT_COLUMNS = ("patient", "series", "sample")

BLOOD_ACTIVITY_COLUMNS = (
    "patient",
    "series",
    "sample",
    "matrix",
    "injection_datetime",
    "sample_datetime",
    "counting_datetime",
    "hours_pi",
    "cpm_per_ml",
    "bq_per_ml_at_counting",
    "bq_per_ml_at_sample",
    "bq_per_ml_at_injection",
    "injected_activity_bq",
    "percent_ia_per_l",
    "weight_kg",
    "suv",
)
"""Columns of :func:`blood_activity`, in order.

``hours_pi`` is hours from injection to sampling; the ``bq_per_ml_*`` columns are the
activity concentration at counting, decay-corrected to the sampling time and to the
injection; ``percent_ia_per_l`` and ``suv`` are decay-corrected to injection."""

COMPARISON_COLUMNS = (
    "patient",
    "series",
    "sample",
    "hours_pi_blood",
    "hours_pi_image",
    "time_difference_h",
    "blood_suv",
    "image_suv_mean",
    "image_to_blood_ratio",
)
"""Columns of :func:`compare_with_image` (``scan_id`` and ``nominal_hours`` follow when the
measurements have them)."""


# ---------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class CounterCalibration:
    """Well-counter calibration for one radionuclide.

    Attributes
    ----------
    cpm_per_bq : float, cpm/Bq
        Net counts per minute per becquerel in the counted sample (efficiency x 60 s/min).
    half_life_s : float, s
        Physical half-life used for the decay corrections.
    nuclide : str, optional
        The radionuclide (``"89Zr"``), for the record.

    Raises
    ------
    InputError
        When a number is not positive and finite.
    """

    cpm_per_bq: float
    half_life_s: float
    nuclide: str | None = None

    def __post_init__(self) -> None:
        for name in ("cpm_per_bq", "half_life_s"):
            value = getattr(self, name)
            if not _positive_number(value):
                raise InputError(
                    "calibration value must be a positive number",
                    tag=name,
                    value=value,
                    expected="a finite number > 0",
                )


def _positive_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def read_counter_calibration(path: str | PathLike[str]) -> CounterCalibration:
    """Read a well-counter calibration from JSON.

    Parameters
    ----------
    path : path-like
        A JSON object with ``cpm_per_bq`` and ``half_life_s`` (s) or ``nuclide``; other keys
        (notes) are ignored. When both are given, ``half_life_s`` is used.

    Returns
    -------
    CounterCalibration

    Raises
    ------
    InputError
        When the file is missing or not a JSON object, or a value is missing or invalid
        (the message names the file and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    content = read_json_object(
        path,
        what="calibration",
        example='an object such as {"cpm_per_bq": 18.6, "nuclide": "89Zr"}',
    )
    cpm_per_bq: Any = content.get("cpm_per_bq")
    if not _positive_number(cpm_per_bq):
        raise InputError(
            "counter efficiency missing or invalid",
            file=path,
            tag="cpm_per_bq",
            value="missing" if cpm_per_bq is None else cpm_per_bq,
            expected="a number > 0 (net cpm per Bq)",
        )
    nuclide = content.get("nuclide")
    if nuclide is not None and not isinstance(nuclide, str):
        raise InputError("nuclide must be text", file=path, tag="nuclide", value=nuclide)
    half_life_s: Any = content.get("half_life_s")
    if half_life_s is None:
        if nuclide is None:
            raise InputError(
                "half-life unknown",
                file=path,
                tag="half_life_s",
                value="missing",
                expected="half_life_s in seconds, or a nuclide such as '89Zr'",
            )
        try:
            half_life_s = find_nuclide(nuclide).half_life_s
        except InputError as exc:
            raise InputError(
                "unknown radionuclide",
                file=path,
                tag="nuclide",
                value=nuclide,
                expected=exc.expected,
            ) from exc
    elif not _positive_number(half_life_s):
        raise InputError(
            "half-life must be a positive number",
            file=path,
            tag="half_life_s",
            value=half_life_s,
            expected="seconds > 0",
        )
    return CounterCalibration(
        cpm_per_bq=float(cpm_per_bq), half_life_s=float(half_life_s), nuclide=nuclide
    )


# ---------------------------------------------------------------------------- samples
def _row_label(frame: pd.DataFrame, position: int, from_file: bool) -> str:
    if from_file:
        return f"row {position + 2}"  # the header is row 1, as a spreadsheet shows it
    return f"row {frame.index[position]!r}"


def _sample_problems(
    frame: pd.DataFrame, source: str | Path, *, from_file: bool
) -> tuple[pd.DataFrame, list[InputError]]:
    """Parse a blood-sample table (a copy) and collect every problem of it."""
    missing = [c for c in BLOOD_SAMPLE_COLUMNS if c not in frame.columns]
    if missing:
        problem = InputError(
            "blood-sample table lacks required column(s)",
            file=source,
            tag=", ".join(missing),
            value="missing",
            expected="columns " + ", ".join(BLOOD_SAMPLE_COLUMNS),
        )
        return frame.copy(), [problem]
    out = frame.copy()
    problems: list[InputError] = []

    def fail(position: int, column: str, message: str, value: Any, expected: str) -> None:
        where = _row_label(frame, position, from_file)
        problems.append(
            InputError(
                message, file=source, tag=f"{where}, {column}", value=value, expected=expected
            )
        )

    for column in _TEXT_COLUMNS:
        raw = frame[column]
        for position, value in enumerate(raw):
            if pd.isna(value) or not str(value).strip():
                fail(position, column, "empty cell", "missing", "a non-empty label")
        out[column] = ["" if pd.isna(v) else str(v).strip() for v in raw]

    for column in _DATETIME_COLUMNS:
        raw = frame[column]
        parsed: list[Any] = []
        for position, value in enumerate(raw):
            expected = "an ISO 8601 date-time without time zone, e.g. 2018-04-09T09:36:00"
            moment: Any = pd.NaT
            if pd.isna(value) or (isinstance(value, str) and not value.strip()):
                fail(position, column, "empty cell", "missing", expected)
                parsed.append(pd.NaT)
                continue
            try:
                moment = pd.Timestamp(value)
            except (ValueError, TypeError):
                moment = pd.NaT
            if pd.isna(moment):
                fail(position, column, "not a date-time", value, expected)
            elif moment.tzinfo is not None:
                fail(position, column, "date-time carries a time zone", value, expected)
                moment = pd.NaT
            parsed.append(moment)
        out[column] = pd.to_datetime(pd.Series(parsed, index=frame.index, dtype=object))

    numeric: dict[str, tuple[bool, str]] = {
        "injected_activity_bq": (False, "a number > 0 (Bq at injection)"),
        "whole_blood_cpm_per_ml": (True, "a number >= 0 (net cpm/mL), or empty"),
        "plasma_cpm_per_ml": (True, "a number >= 0 (net cpm/mL), or empty"),
    }
    for column, (may_be_empty, expected) in numeric.items():
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        for position, (value, number) in enumerate(zip(raw, values, strict=True)):
            empty = pd.isna(value) or (isinstance(value, str) and not value.strip())
            if empty:
                if not may_be_empty:
                    fail(position, column, "empty cell", "missing", expected)
                continue
            if not math.isfinite(number):
                fail(position, column, "not a number", value, expected)
            elif number < 0 or (not may_be_empty and number == 0):
                fail(position, column, "value out of range", value, expected)
        out[column] = values

    injected = out["injection_datetime"]
    sampled = out["sample_datetime"]
    counted = out["counting_datetime"]
    for position in range(len(out)):
        when_injected, when_sampled = injected.iloc[position], sampled.iloc[position]
        when_counted = counted.iloc[position]
        if pd.notna(when_sampled) and pd.notna(when_injected) and when_sampled < when_injected:
            fail(
                position,
                "sample_datetime",
                "sample drawn before the injection",
                when_sampled.isoformat(),
                f"a time at or after the injection ({when_injected.isoformat()})",
            )
        if pd.notna(when_counted) and pd.notna(when_sampled) and when_counted < when_sampled:
            fail(
                position,
                "counting_datetime",
                "sample counted before it was drawn",
                when_counted.isoformat(),
                f"a time at or after sampling ({when_sampled.isoformat()})",
            )
    keys = out[["patient", "series", "sample"]]
    for twice in np.flatnonzero(keys.duplicated().to_numpy()):
        fail(
            int(twice),
            "sample",
            "the same sample appears twice",
            "/".join(keys.iloc[int(twice)]),
            "one row per patient, series and sample",
        )
    return out, problems


def _check_samples(frame: pd.DataFrame, source: str | Path, *, from_file: bool) -> pd.DataFrame:
    """Validate a blood-sample table and return it with parsed types (a copy).

    Raises the first problem (its message says how many more there are).
    """
    out, problems = _sample_problems(frame, source, from_file=from_file)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        reason = first.reason + (
            f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        )
        raise InputError(
            reason, file=first.file, tag=first.tag, value=first.value, expected=first.expected
        )
    return out


def _read_sample_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV table ({exc})", file=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def blood_sample_problems(path: str | PathLike[str]) -> list[InputError]:
    """Every problem of a blood-sample CSV (for ``immunopet validate``); empty when valid.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of InputError
        Each names the file, the row (the header is row 1) and column, the value and what
        was expected.
    """
    file = Path(path)
    try:
        frame = _read_sample_frame(file)
    except InputError as exc:
        return [exc]
    return _sample_problems(frame, file, from_file=True)[1]


def read_blood_samples(path: str | PathLike[str]) -> pd.DataFrame:
    """Read and validate a blood-sample table (CSV).

    Parameters
    ----------
    path : path-like
        CSV with the columns :data:`BLOOD_SAMPLE_COLUMNS` (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        The table with ``patient``, ``series`` and ``sample`` as text, the three date-time
        columns as ``datetime64`` and the numbers as float (empty counts as NaN).

    Raises
    ------
    InputError
        When the file is missing or unreadable, a required column is missing, or a cell is
        invalid: the message names the file, the row (the header is row 1, as a spreadsheet
        numbers them) and column, the value found and what was expected. Also when a sample
        was drawn before the injection or counted before it was drawn.
    """
    path = Path(path)
    return _check_samples(_read_sample_frame(path), path, from_file=True)


def blood_activity(
    samples: pd.DataFrame,
    calibration: CounterCalibration,
    *,
    weight_kg: Mapping[tuple[str, str], float] | None = None,
) -> pd.DataFrame:
    """Activity concentration, %IA/L and SUV of every counted blood sample.

    Parameters
    ----------
    samples : pandas.DataFrame
        A blood-sample table (:func:`read_blood_samples`, or a frame with the same columns;
        it is validated again).
    calibration : CounterCalibration
    weight_kg : mapping of (patient, series) to float, kg, optional
        Body weight at each injection; ``suv`` is NaN where it is not given.

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per sample and counted matrix (``matrix`` = ``"whole_blood"`` or
        ``"plasma"``; a matrix with an empty count has no row), columns
        :data:`BLOOD_ACTIVITY_COLUMNS`, sorted by patient, series, sampling time, matrix.

    Raises
    ------
    InputError
        When the table is invalid, or a weight is not a positive number.

    Notes
    -----
    With :math:`c` the net count rate (cpm/mL), :math:`\\varepsilon` the counter efficiency
    (cpm/Bq), :math:`T` the half-life, :math:`t_i, t_s, t_c` the injection, sampling and
    counting date-times, and :math:`A` the injected activity (Bq):

    .. math::

        C(t_c) = c / \\varepsilon, \\quad
        C(t_s) = C(t_c)\\, 2^{(t_c - t_s)/T}, \\quad
        C_0 = C(t_c)\\, 2^{(t_c - t_i)/T}

        \\%\\mathrm{IA/L} = C_0 \\cdot 1000 / A \\cdot 100, \\quad
        \\mathrm{SUV} = C_0 \\cdot W[\\mathrm{g}] / A

    :math:`C_0` is the concentration decay-corrected to injection (Bq/mL), as the SUV of a
    PET image is.

    Examples
    --------
    One sample counted exactly one half-life after the injection, drawn at injection:

    >>> from datetime import datetime, timedelta
    >>> t0 = datetime(2024, 1, 1, 9, 0)
    >>> table = pd.DataFrame({"patient": ["P01"], "series": ["s1"], "sample": ["1"],
    ...     "injection_datetime": [t0], "sample_datetime": [t0],
    ...     "counting_datetime": [t0 + timedelta(hours=78.41)],
    ...     "injected_activity_bq": [37e6], "whole_blood_cpm_per_ml": [1860.0],
    ...     "plasma_cpm_per_ml": [float("nan")]})
    >>> out = blood_activity(table, CounterCalibration(18.6, 78.41 * 3600),
    ...                      weight_kg={("P01", "s1"): 74.0})
    >>> columns = ["bq_per_ml_at_counting", "bq_per_ml_at_injection", "suv"]
    >>> out["matrix"].tolist(), out[columns].round(9).values.tolist()
    (['whole_blood'], [[100.0, 200.0, 0.4]])
    """
    checked = _check_samples(samples, "samples", from_file=False)
    weights = dict(weight_kg or {})
    for key, value in weights.items():
        if not _positive_number(value):
            raise InputError(
                "body weight must be a positive number",
                tag=f"weight_kg[{key!r}]",
                value=value,
                expected="kg > 0",
            )
    half_life_s = calibration.half_life_s
    injected = checked["injection_datetime"]
    sampled = checked["sample_datetime"]
    counted = checked["counting_datetime"]
    to_sample_s = (counted - sampled).dt.total_seconds().to_numpy(dtype=np.float64)
    to_injection_s = (counted - injected).dt.total_seconds().to_numpy(dtype=np.float64)
    hours_pi = (sampled - injected).dt.total_seconds().to_numpy(dtype=np.float64) / 3600.0
    activity_bq = checked["injected_activity_bq"].to_numpy(dtype=np.float64)
    weight = np.array(
        [
            weights.get((p, s), np.nan)
            for p, s in zip(checked["patient"], checked["series"], strict=True)
        ],
        dtype=np.float64,
    )

    parts = []
    for matrix, column in _MATRIX_COLUMNS.items():
        cpm = checked[column].to_numpy(dtype=np.float64)
        at_counting = cpm / calibration.cpm_per_bq
        at_injection = decay_correct_back(at_counting, to_injection_s, half_life_s)
        part = pd.DataFrame(
            {
                "patient": checked["patient"].to_numpy(),
                "series": checked["series"].to_numpy(),
                "sample": checked["sample"].to_numpy(),
                "matrix": matrix,
                "injection_datetime": injected.to_numpy(),
                "sample_datetime": sampled.to_numpy(),
                "counting_datetime": counted.to_numpy(),
                "hours_pi": hours_pi,
                "cpm_per_ml": cpm,
                "bq_per_ml_at_counting": at_counting,
                "bq_per_ml_at_sample": decay_correct_back(at_counting, to_sample_s, half_life_s),
                "bq_per_ml_at_injection": at_injection,
                "injected_activity_bq": activity_bq,
                "percent_ia_per_l": percent_injected_activity_per_litre(at_injection, activity_bq),
                "weight_kg": weight,
                "suv": suv_of_concentration(at_injection, activity_bq, weight),
                "_order": np.arange(len(checked)),
            }
        )
        parts.append(part[np.isfinite(cpm)])
    out = pd.concat(parts, ignore_index=True)
    out["_matrix_order"] = out["matrix"].map({"whole_blood": 0, "plasma": 1})
    out = out.sort_values(
        ["patient", "series", "hours_pi", "_order", "_matrix_order"], kind="stable"
    )
    return out.loc[:, list(BLOOD_ACTIVITY_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------- image
def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks required column(s)",
            file=what,
            tag=", ".join(missing),
            value="missing",
            expected="columns " + ", ".join(columns),
        )


def compare_with_image(
    blood: pd.DataFrame,
    measurements: pd.DataFrame,
    *,
    tolerance_h: float = 6.0,
    voi: str = "blood_pool",
) -> pd.DataFrame:
    """Pair whole-blood SUVs of the samples with the image-derived blood pool nearest in time.

    Parameters
    ----------
    blood : pandas.DataFrame
        Output of :func:`blood_activity` (rows with ``matrix == "whole_blood"`` and a known
        ``suv`` are used).
    measurements : pandas.DataFrame
        VOI measurements with at least ``patient``, ``series``, ``kind``, ``voi``,
        ``hours_pi`` and ``suv_mean``; the rows ``kind == "organ"`` and ``voi == voi`` are
        the image-derived blood pool.
    tolerance_h : float, hours
        A sample is paired only with a scan at most this far from it in time.
    voi : str
        The organ VOI standing for blood (the aorta sphere, ``"blood_pool"``).

    Returns
    -------
    pandas.DataFrame
        One row per sample that has a scan within the tolerance, columns
        :data:`COMPARISON_COLUMNS` (then ``scan_id`` and ``nominal_hours`` when present):
        ``time_difference_h`` = image minus blood time, ``image_to_blood_ratio`` =
        ``image_suv_mean / blood_suv`` (1 when the image recovers the blood activity).

    Raises
    ------
    InputError
        When a required column is missing, the tolerance is negative, or one scan has two
        blood-pool rows.
    """
    if not (math.isfinite(tolerance_h) and tolerance_h >= 0):
        raise InputError(
            "tolerance must be a non-negative number of hours",
            tag="tolerance_h",
            value=tolerance_h,
            expected=">= 0",
        )
    _require_columns(blood, ("patient", "series", "sample", "matrix", "hours_pi", "suv"), "blood")
    _require_columns(
        measurements, ("patient", "series", "kind", "voi", "hours_pi", "suv_mean"), "measurements"
    )
    left = blood[(blood["matrix"] == "whole_blood") & blood["suv"].notna()]
    left = pd.DataFrame(
        {
            "patient": left["patient"].astype(str).to_numpy(),
            "series": left["series"].astype(str).to_numpy(),
            "sample": left["sample"].to_numpy(),
            "hours_pi_blood": left["hours_pi"].to_numpy(dtype=np.float64),
            "blood_suv": left["suv"].to_numpy(dtype=np.float64),
        }
    )
    chosen = measurements[
        (measurements["kind"] == "organ")
        & (measurements["voi"] == voi)
        & measurements["suv_mean"].notna()
        & measurements["hours_pi"].notna()
    ]
    extra = [c for c in ("scan_id", "nominal_hours") if c in measurements.columns]
    right = pd.DataFrame(
        {
            "patient": chosen["patient"].astype(str).to_numpy(),
            "series": chosen["series"].astype(str).to_numpy(),
            "hours_pi_image": chosen["hours_pi"].to_numpy(dtype=np.float64),
            "image_suv_mean": chosen["suv_mean"].to_numpy(dtype=np.float64),
            **{c: chosen[c].to_numpy() for c in extra},
        }
    )
    twice = right.duplicated(["patient", "series", "hours_pi_image"])
    if twice.any():
        row = right[twice].iloc[0]
        raise InputError(
            f"two {voi!r} organ rows for one scan",
            file="measurements",
            tag="voi",
            value=f"{row['patient']}/{row['series']} at {row['hours_pi_image']:g} h",
            expected="one blood-pool measurement per scan",
        )
    if left.empty or right.empty:
        return pd.DataFrame(columns=[*COMPARISON_COLUMNS, *extra])
    right["_key"] = right["hours_pi_image"]
    left["_key"] = left["hours_pi_blood"]
    paired = pd.merge_asof(
        left.sort_values("_key", kind="stable"),
        right.sort_values("_key", kind="stable"),
        on="_key",
        by=["patient", "series"],
        direction="nearest",
        tolerance=float(tolerance_h),
    )
    paired = paired[paired["image_suv_mean"].notna()].copy()
    paired["time_difference_h"] = paired["hours_pi_image"] - paired["hours_pi_blood"]
    paired["image_to_blood_ratio"] = paired["image_suv_mean"] / paired["blood_suv"]
    paired = paired.sort_values(["patient", "series", "hours_pi_blood"], kind="stable")
    return paired.loc[:, [*COMPARISON_COLUMNS, *extra]].reset_index(drop=True)
