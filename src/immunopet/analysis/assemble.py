"""Compute the whole analysis of a study once: from the results store to a :class:`StudyAnalysis`.

:func:`assemble_analysis` reads the results folder (the DuckDB store, or the exported Parquet
files when the database is absent or in use) and, when the study is known, the study's own
inputs: clinical sheet, adverse events, the baseline lesion table, blood samples and the
counter calibration. It then runs every analysis and test of the durvalumab study (seed 000)
that the inputs allow:

=====================  ======================================================================
part                   how (``plan`` = the manifest's ``[analysis]`` table, ``AnalysisPlan``)
=====================  ======================================================================
schedule               the scans table: patient, series, nominal and actual hours
baseline               :func:`~immunopet.analysis.tables.baseline_table` and ``_summary``
adverse_events         :func:`~immunopet.analysis.tables.adverse_event_table`, denominator =
                       patients of the clinical sheet
organ_uptake           SUVmean per organ, series and time point over the biodistribution cohort
                       of each series (``plan.biodistribution_cohort``, default the patients
                       with the full schedule): :mod:`~immunopet.analysis.cohorts`
predose_ratio          :func:`~immunopet.analysis.biodistribution.predose_ratio` of
                       ``plan.comparison_series`` over ``plan.reference_series``
blood, blood_summary   :func:`~immunopet.analysis.blood.blood_activity` (body weights from the
blood_vs_image         scans table), mean +- SD over the same cohort, and
                       :func:`~immunopet.analysis.blood.compare_with_image`
visibility             :func:`~immunopet.analysis.lesions.lesion_visibility`, reader rule,
                       percentages of the FDG-positive lesions of the patients who had that
                       scan; lesions seen only on the comparison series
tumour_to_blood        ratio over ``plan.tumour_to_blood_lesions`` and the recommended time
time_point             point of the reference series
uptake                 :func:`~immunopet.analysis.aggregates.patient_uptake` at
                       ``settings.analysis_hours`` (``plan.fallback_hours``),
                       ``plan.uptake_metric``, size limit and exclusions of the study
lesion_response        the lesions joined with the clinical sheet and ``progression`` at the
                       landmark (``plan.response``)
tests                  Mann-Whitney (progression), Kruskal-Wallis (response categories) on
                       lesions; per IHC marker of ``plan.ihc`` a Kruskal-Wallis over its
                       cut-off groups and a Spearman correlation of ``plan.patient_aggregate``
cohort_survival        median PFS and OS (SPSS-style interval) and restricted mean, in months
split_survival         ``plan.split`` of the per-patient ``plan.split_aggregate``: Kaplan-Meier
                       medians, restricted means, log-rank, Cox hazard ratio of high vs low
biomarkers             :func:`~immunopet.stats.compare_biomarkers` of ``plan.biomarkers``:
                       AUC (DeLong) and Harrell's C (IJ) per tumour type and overall, each
                       candidate paired with the PET uptake candidate
heterogeneity          :func:`~immunopet.analysis.heterogeneity.uptake_heterogeneity`:
                       variance components of log lesion uptake of ``uptake``
fdg_lesions            :func:`~immunopet.analysis.fdg.fdg_positivity` of the stored
                       ``fdg_measurements`` (SUVmax > ``plan.fdg_positive_suv_max`` vs reader)
target_engagement      :func:`~immunopet.analysis.target_engagement.target_engagement`:
                       Patlak Ki/VT (sampled plasma input when the blood samples are usable,
                       else the image), time-integrated activity and residence times
tables                 the machine-readable tables (:mod:`~immunopet.analysis.export`)
=====================  ======================================================================

Every part is computed in its own step: an input problem (an
:class:`~immunopet.errors.ImmunoPETError`: a missing sheet, a test with an empty group, too
few patients for a Cox model) leaves the part ``None`` (or empty) and says why in
:attr:`StudyAnalysis.notes`; any other exception is a fault of the program and stops the
analysis. Nothing here prints; patients appear only by their study pseudonym.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from immunopet.analysis import response
from immunopet.analysis.aggregates import PatientUptake, patient_uptake
from immunopet.analysis.biodistribution import (
    SERIES_ORDER,
    predose_ratio,
)
from immunopet.analysis.blood import (
    blood_activity,
    compare_with_image,
    read_blood_samples,
    read_counter_calibration,
)
from immunopet.analysis.clinical import (
    read_adverse_events,
    read_clinical,
    validate_clinical,
)
from immunopet.analysis.cohorts import (
    biodistribution_cohorts,
    blood_summary,
    cohort_organ_uptake,
    only_comparison,
    tumour_to_blood,
)
from immunopet.analysis.export import analysis_tables
from immunopet.analysis.fdg import fdg_positivity
from immunopet.analysis.heterogeneity import uptake_heterogeneity
from immunopet.analysis.kinetics import KineticsSettings
from immunopet.analysis.lesions import (
    lesion_visibility,
    recommend_time_point,
)
from immunopet.analysis.outcome import NotApplicableError
from immunopet.analysis.results import SplitSurvival, StudyAnalysis
from immunopet.analysis.tables import adverse_event_table, baseline_summary, baseline_table
from immunopet.analysis.target_engagement import target_engagement
from immunopet.errors import ImmunoPETError, InputError
from immunopet.stats.results import SurvivalSummary, TestResult
from immunopet.study.columns import MEASUREMENT_COLUMNS, SCAN_COLUMNS, WARNING_SEPARATOR
from immunopet.study.manifest import load_manifest
from immunopet.study.model import AnalysisPlan, AnalysisSettings, Study
from immunopet.study.provenance import recorded_manifest
from immunopet.study.store import DATABASE_NAME, ResultsStore

__all__ = [
    "KRUSKAL_BOR",
    "KRUSKAL_CPS",
    "KRUSKAL_TPS",
    "MANN_WHITNEY_PROGRESSION",
    "SCHEDULE_COLUMNS",
    "SPEARMAN_CPS",
    "TEST_KEYS",
    "assemble_analysis",
    "read_results",
]

_LOG = logging.getLogger(__name__)

# The titles of the tests under the default plan (the durvalumab paper's Methods); other
# plans title their tests after their metric, aggregate and markers (StudyAnalysis.test_roles).
MANN_WHITNEY_PROGRESSION: Final = "SUVpeak: progression at 6 weeks (Mann-Whitney)"
"""Lesion SUVpeak of patients with vs without progressive disease at 6 weeks."""
KRUSKAL_BOR: Final = "SUVpeak: best overall response (Kruskal-Wallis)"
"""Lesion SUVpeak by best overall response (the categories present, NE left out)."""
KRUSKAL_TPS: Final = "Median SUVpeak per patient: PD-L1 TPS group (Kruskal-Wallis)"
"""Per-patient median lesion SUVpeak by PD-L1 TPS group (<1%, 1-49%, >=50%)."""
KRUSKAL_CPS: Final = "Median SUVpeak per patient: PD-L1 CPS group (Kruskal-Wallis)"
"""Per-patient median lesion SUVpeak by PD-L1 CPS group."""
SPEARMAN_CPS: Final = "Median SUVpeak per patient vs PD-L1 CPS (Spearman)"
"""Rank correlation of the per-patient median lesion SUVpeak with the CPS."""
TEST_KEYS: Final = (
    MANN_WHITNEY_PROGRESSION,
    KRUSKAL_BOR,
    KRUSKAL_TPS,
    KRUSKAL_CPS,
    SPEARMAN_CPS,
)
"""Keys of :attr:`StudyAnalysis.tests`, in the order of the study's results section."""

SCHEDULE_COLUMNS: Final = ("patient", "series", "nominal_hours", "hours_pi")
"""Columns of :attr:`StudyAnalysis.schedule`."""

_TABLES: Final = (
    "scans",
    "measurements",
    "failures",
    "provenance",
    "clinical",
    "blood",
    "fdg_measurements",
)
_JSON_PROVENANCE: Final = ("settings", "library_versions", "input_keys", "warnings")
_T = TypeVar("_T")


_NotApplicableError = NotApplicableError


# ---------------------------------------------------------------------------- guarded steps
@dataclass
class _Steps:
    """Runs the analysis steps; a failing step leaves its part ``None`` and writes a note
    (and, when an input is wrong rather than the part not applicable, a problem)."""

    progress: bool
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._bar = tqdm(desc="analysis", unit="step", disable=not self.progress)

    def run(self, what: str, compute: Callable[[], _T]) -> _T | None:
        """The step's result, or ``None`` with a note when its input does not allow it.

        Only a typed input problem (:class:`~immunopet.errors.ImmunoPETError`) skips a step;
        any other exception is a fault of the program and propagates.
        """
        try:
            result: _T | None = compute()
        except ImmunoPETError as exc:
            _LOG.debug("analysis step %r skipped", what, exc_info=True)
            note = f"{what}: not computed ({_error_text(exc)})"
            self.notes.append(note)
            if not isinstance(exc, NotApplicableError):  # an input is wrong, not absent
                self.problems.append(note)
            result = None
        self._bar.update(1)
        return result

    def close(self) -> None:
        self._bar.close()


def _error_text(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ImmunoPETError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------------- reading
def read_results(
    results_dir: str | Path, *, notes: list[str] | None = None
) -> dict[str, pd.DataFrame]:
    """The tables of a results folder: from its database, else from its Parquet exports.

    Parameters
    ----------
    results_dir : path-like
        A folder written by :func:`~immunopet.study.runner.run_study`.
    notes : list of str, optional
        Receives a note when the database cannot be opened and the exports are read.

    Returns
    -------
    dict of str to DataFrame
        Those of ``scans``, ``measurements``, ``failures``, ``provenance``, ``clinical`` and
        ``blood`` that exist (scans and measurements in patient, series, time order).

    Raises
    ------
    InputError
        When the folder holds neither a database nor exported scans/measurements.
    """
    folder = Path(results_dir)
    notes = [] if notes is None else notes
    database = folder / DATABASE_NAME
    if database.is_file():
        try:
            with ResultsStore(folder) as store:
                present = set(store.tables())
                return {name: store.read_table(name) for name in _TABLES if name in present}
        except InputError as exc:
            notes.append(f"results database not readable ({exc}); the Parquet exports are used")
    tables = {}
    for name in _TABLES:
        path = folder / f"{name}.parquet"
        if path.is_file():
            tables[name] = pd.read_parquet(path)
    if "scans" not in tables and "measurements" not in tables:
        raise InputError(
            "no results found",
            file=folder,
            value="neither a results database nor scans/measurements Parquet files",
            expected=f"{DATABASE_NAME} or the exported scans.parquet and measurements.parquet "
            "(run `immunopet run` first)",
        )
    return tables


def _latest_provenance(provenance: pd.DataFrame | None) -> dict[str, Any]:
    """The last run's provenance row: JSON columns parsed, times as ISO text."""
    if provenance is None or provenance.empty:
        return {}
    row = provenance.iloc[-1].to_dict()
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[str(key)] = value.isoformat()
        elif key in _JSON_PROVENANCE and isinstance(value, str):
            try:
                out[str(key)] = json.loads(value)
            except json.JSONDecodeError:
                out[str(key)] = value
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            out[str(key)] = None
        elif isinstance(value, np.generic):
            out[str(key)] = value.item()
        else:
            out[str(key)] = value
    return out


def _study_from_provenance(
    provenance: dict[str, Any], notes: list[str], folder: Path
) -> Study | None:
    manifest = recorded_manifest(provenance.get("manifest_path"), folder)
    if manifest is None:
        return None
    if not manifest.is_file():
        notes.append(
            f"the manifest named in the provenance no longer exists ({manifest.name}); "
            "the study's own inputs (clinical sheet, lesion table ...) are not read"
        )
        return None
    try:
        return load_manifest(manifest)
    except ImmunoPETError as exc:
        notes.append(f"the manifest of the run could not be read ({_error_text(exc)})")
        return None


def _settings(
    study: Study | None, provenance: dict[str, Any], notes: list[str]
) -> AnalysisSettings:
    given = provenance.get("settings")
    if study is not None:
        current = asdict(study.settings)
        if isinstance(given, dict) and any(given.get(k) != v for k, v in current.items()):
            changed = sorted(k for k, v in current.items() if given.get(k) != v)
            notes.append(
                "the study's settings differ from those of the stored run "
                f"({', '.join(changed)}): the measurements were made with the run's; "
                "run the study again"
            )
        return study.settings
    if isinstance(given, dict):
        known = {f.name for f in fields(AnalysisSettings)}
        return AnalysisSettings(**{k: v for k, v in given.items() if k in known})
    notes.append("analysis settings unknown (no provenance): the defaults are used")
    return AnalysisSettings()


def _input_path(study: Study | None, path: Path | None) -> Path | None:
    if study is None or path is None:
        return None
    return path if path.is_absolute() else Path(study.root) / path


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))


# ---------------------------------------------------------------------------- inputs
def _clinical(
    study: Study | None, tables: dict[str, pd.DataFrame], notes: list[str]
) -> pd.DataFrame:
    path = _input_path(study, study.inputs.clinical if study is not None else None)
    if path is not None:
        try:
            return read_clinical(path)
        except ImmunoPETError as exc:
            if "clinical" not in tables:
                raise
            notes.append(
                f"clinical sheet not read ({_error_text(exc)}); the copy in the results store "
                "is used"
            )
    if "clinical" in tables:
        return validate_clinical(tables["clinical"], source="results store, table clinical")
    raise _NotApplicableError("no clinical sheet in the study or the results store")


def _lesion_table(study: Study | None) -> pd.DataFrame:
    path = _input_path(study, study.inputs.lesions if study is not None else None)
    if path is None:
        raise _NotApplicableError(
            "no baseline lesion table (FDG status, long axis); the study's inputs are unknown"
            if study is None
            else "no baseline lesion table (FDG status, long axis) in the manifest"
        )
    if not path.is_file():
        raise InputError("lesion table not found", file=path)
    return pd.read_csv(path)


def _blood_samples(study: Study | None, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    path = _input_path(study, study.inputs.blood_samples if study is not None else None)
    if path is not None:
        return read_blood_samples(path)
    if "blood" in tables and not tables["blood"].empty:
        return tables["blood"]
    raise _NotApplicableError("no blood samples")


def _weights(scans: pd.DataFrame) -> dict[tuple[str, str], float]:
    if not {"patient", "series", "weight_kg"} <= set(scans.columns):
        return {}
    out: dict[tuple[str, str], float] = {}
    for patient, series, weight in scans[["patient", "series", "weight_kg"]].itertuples(
        index=False
    ):
        value = pd.to_numeric(pd.Series([weight]), errors="coerce").iloc[0]
        if pd.notna(value) and value > 0:
            out.setdefault((str(patient), str(series)), float(value))
    return out


def _analysis_series(measurements: pd.DataFrame, plan: AnalysisPlan) -> str:
    present = set(measurements["series"].astype(str)) if "series" in measurements else set()
    if not present:
        raise NotApplicableError("no measurements")
    if plan.reference_series not in present:
        raise NotApplicableError(
            f"no measurements of the reference series {plan.reference_series!r} "
            f"(analysis.reference_series; present: {', '.join(sorted(present))})"
        )
    return plan.reference_series


# ---------------------------------------------------------------------------- parts
def _schedule(scans: pd.DataFrame) -> pd.DataFrame:
    if scans.empty or not set(SCHEDULE_COLUMNS) <= set(scans.columns):
        return _empty(SCHEDULE_COLUMNS)
    out = scans.loc[:, list(SCHEDULE_COLUMNS)].copy()
    order = {s: i for i, s in enumerate(SERIES_ORDER)}
    out["_series"] = out["series"].map(lambda s: order.get(str(s), len(order)))
    out = out.sort_values(["patient", "_series", "series", "nominal_hours"], kind="stable")
    return out.drop(columns="_series").reset_index(drop=True)


# ---------------------------------------------------------------------------- warnings
def _split_warnings(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [part.strip() for part in str(value).split(WARNING_SEPARATOR) if part.strip()]


def _collect_warnings(
    tables: dict[str, pd.DataFrame],
    provenance: dict[str, Any],
    uptake: PatientUptake | None,
) -> list[str]:
    found: list[str] = []
    scans = tables.get("scans")
    if scans is not None and "warnings" in scans:
        for scan_id, value in zip(scans["scan_id"], scans["warnings"], strict=True):
            found.extend(
                text if str(scan_id) in text else f"{scan_id}: {text}"
                for text in _split_warnings(value)
            )
    measurements = tables.get("measurements")
    if measurements is not None and "warnings" in measurements:
        rows = measurements[["scan_id", "kind", "voi", "warnings"]].itertuples(index=False)
        for scan_id, kind, voi, value in rows:
            found.extend(
                text if str(scan_id) in text else f"{scan_id} {kind} {voi}: {text}"
                for text in _split_warnings(value)
            )
    failures = tables.get("failures")
    if failures is not None and not failures.empty:
        for scan_id, message in zip(failures["scan_id"], failures["message"], strict=True):
            found.append(f"{scan_id}: not processed ({message})")
    run_warnings = provenance.get("warnings")
    if isinstance(run_warnings, list):
        found.extend(str(text) for text in run_warnings)
    if uptake is not None:
        for patient, note in zip(uptake.patients["patient"], uptake.patients["note"], strict=True):
            if isinstance(note, str) and note:
                found.append(f"{patient}: {note}")
        unapplied = uptake.excluded[~uptake.excluded["applied"].astype(bool)]
        for patient, lesion, reason in unapplied[["patient", "lesion", "reason"]].itertuples(
            index=False
        ):
            found.append(f"exclusion of {patient} lesion {lesion} not applied: {reason}")
    return list(dict.fromkeys(found))


def _frame(tables: dict[str, pd.DataFrame], name: str, columns: Sequence[str]) -> pd.DataFrame:
    frame = tables.get(name)
    return frame.reset_index(drop=True) if frame is not None else _empty(columns)


# ---------------------------------------------------------------------------- the analysis
def assemble_analysis(
    results_dir: str | Path, *, study: Study | None = None, progress: bool = False
) -> StudyAnalysis:
    """Compute every table, test and survival estimate of the report once.

    Parameters
    ----------
    results_dir : path-like
        A results folder written by :func:`~immunopet.study.runner.run_study`: the database
        ``immunopet.duckdb``, or (when it is absent or another process holds it) the exported
        ``<table>.parquet`` files.
    study : Study, optional
        The study (its manifest) whose inputs to read: clinical sheet, adverse events, lesion
        table, blood samples and counter calibration, its exclusions and settings. Default:
        the manifest named in the latest provenance row, when that file still exists; else the
        analysis uses only the store (clinical sheet and blood samples as copied there, the
        settings of the provenance) and says what is missing.
    progress : bool
        A tqdm progress bar over the analysis steps.

    Returns
    -------
    StudyAnalysis
        Parts that the inputs do not allow are ``None`` (or empty) with the reason in
        ``notes``. ``warnings`` holds the run's recorded warnings (per scan and VOI, failed
        scans, run notes) and analysis warnings (fallback time points, exclusions that matched
        no lesion), each once. ``provenance`` is the latest run's row with its JSON columns
        (``settings``, ``library_versions``, ``input_keys``, ``warnings``) parsed and times as
        ISO 8601 text. Survival times are in months (days / :data:`~immunopet.stats.
        DAYS_PER_MONTH`).

    Raises
    ------
    InputError
        When the folder holds neither a results database nor exported scans/measurements.

    Notes
    -----
    The per-patient uptake uses ``settings.analysis_hours`` (the manifest's choice, default
    120 h); the time point with the best tumour-to-blood ratio is reported beside it in
    ``time_point`` and ``notes``, not substituted.
    """
    folder = Path(results_dir)
    early_notes: list[str] = []
    tables = read_results(folder, notes=early_notes)
    provenance = _latest_provenance(tables.get("provenance"))
    if study is None:
        study = _study_from_provenance(provenance, early_notes, folder)
    settings = _settings(study, provenance, early_notes)
    scans = _frame(tables, "scans", SCAN_COLUMNS)
    measurements = _frame(tables, "measurements", MEASUREMENT_COLUMNS)
    failures = _frame(tables, "failures", ("scan_id", "message"))

    plan = study.plan if study is not None else AnalysisPlan()
    steps = _Steps(progress=progress, notes=early_notes)
    notes = steps.notes
    try:
        clinical = steps.run("clinical sheet", lambda: _clinical(study, tables, notes))
        lesions = steps.run("baseline lesion table", lambda: _lesion_table(study))

        baseline = summary = adverse = None
        if clinical is not None:
            baseline = steps.run("baseline table", lambda: baseline_table(clinical))
            summary = steps.run("baseline summary", lambda: baseline_summary(clinical))
            adverse = steps.run("adverse events", lambda: _adverse_events(study, clinical))

        cohorts = biodistribution_cohorts(scans, plan)
        organs = steps.run(
            "biodistribution", lambda: cohort_organ_uptake(measurements, cohorts, plan)
        )
        ratio = steps.run("predose / tracer-only ratio", lambda: _predose(measurements, plan))

        blood = steps.run("blood samples", lambda: _blood(study, tables, scans))
        blood_vs_image = blood_means = None
        if blood is not None:
            blood_vs_image = steps.run(
                "blood samples vs image blood pool",
                lambda: compare_with_image(blood, measurements, voi=settings.reference_organ),
            )
            blood_means = steps.run("blood summary", lambda: blood_summary(blood, cohorts, plan))

        engagement = steps.run(
            "kinetics",
            lambda: target_engagement(
                measurements,
                scans,
                blood=blood,
                reference_series=plan.reference_series,
                comparison_series=plan.comparison_series,
                settings=KineticsSettings(blood_voi=settings.reference_organ),
            ),
        )
        if engagement is not None:
            notes.extend(engagement.notes)

        visibility = visibility_extra = None
        if lesions is not None:
            visibility = steps.run(
                "lesion visibility",
                lambda: lesion_visibility(
                    measurements,
                    lesions,
                    rule="reader",
                    reference=settings.reference_organ,
                    min_long_axis_mm=settings.min_long_axis_mm,
                    denominator="scanned",
                    unknown_lesions="fdg-negative",
                ),
            )
            if visibility is not None:
                notes.append(
                    "visibility: percentages of the FDG-positive lesions of the patients who "
                    "had that scan (or, for 'any', a scan of that series)"
                )
                visibility_extra = steps.run(
                    "lesions seen only on the comparison series",
                    lambda: only_comparison(visibility, plan, settings.min_long_axis_mm),
                )

        tbr = steps.run(
            "tumour-to-blood ratio",
            lambda: tumour_to_blood(
                measurements,
                lesions,
                plan,
                settings.min_long_axis_mm,
                reference=settings.reference_organ,
            ),
        )
        series = steps.run("analysis series", lambda: _analysis_series(measurements, plan))
        time_point = None
        if tbr is not None and series is not None:
            time_point = steps.run(
                "recommended time point", lambda: recommend_time_point(tbr, series=series)
            )
        if time_point is not None:
            agrees = math.isclose(time_point.nominal_hours, settings.analysis_hours)
            notes.append(
                f"analysis time point {settings.analysis_hours:g} h (settings.analysis_hours); "
                f"the best tumour-to-blood ratio of the {time_point.series} scans is at "
                f"{time_point.nominal_hours:g} h ({time_point.ratio:.2f})"
                + ("" if agrees else ": the settings, not the recommendation, are used")
            )

        uptake = None
        if series is not None:
            uptake = steps.run(
                "per-patient uptake",
                lambda: patient_uptake(
                    measurements,
                    hours=settings.analysis_hours,
                    series=series,
                    metric=plan.uptake_metric,
                    min_long_axis_mm=settings.min_long_axis_mm,
                    exclusions=study.exclusions if study is not None else None,
                    fallback_hours=tuple(
                        h for h in plan.fallback_hours if h != settings.analysis_hours
                    ),
                    lesions_table=lesions,
                ),
            )
            if uptake is not None and lesions is None:
                notes.append(
                    "per-patient uptake without a lesion table: every lesion counts and the "
                    "size limit uses the VOI's long axis"
                )

        lesion_table = patients = None
        tests: dict[str, TestResult] = {}
        roles: dict[str, str] = {}
        cohort: dict[str, SurvivalSummary] = {}
        cohort_rmst: dict[str, float] = {}
        split: dict[str, SplitSurvival] = {}
        biomarkers = None
        heterogeneity = None
        if uptake is not None:
            heterogeneity = steps.run(
                "heterogeneity", lambda: uptake_heterogeneity(uptake, clinical)
            )
        fdg_lesions = None
        if "fdg_measurements" in tables:
            fdg_lesions = steps.run(
                "FDG positivity",
                lambda: fdg_positivity(
                    tables["fdg_measurements"], lesions, plan.fdg_positive_suv_max
                ),
            )
        if clinical is not None:
            for endpoint in ("PFS", "OS"):
                result = steps.run(
                    f"cohort {endpoint}", partial(response.cohort_survival, clinical, endpoint)
                )
                if result is not None:
                    cohort[endpoint], cohort_rmst[endpoint] = result
            if uptake is not None:
                lesion_table = steps.run(
                    "lesion uptake with response",
                    lambda: response.lesion_response(uptake, clinical, plan, notes, steps.problems),
                )
                patients = steps.run(
                    "patient uptake with clinical data",
                    lambda: response.patients_clinical(uptake, clinical, plan),
                )
            biomarkers = steps.run(
                "biomarker comparison",
                lambda: response.biomarkers(clinical, uptake, plan, notes),
            )
        else:
            notes.append(
                "no clinical sheet: no baseline or safety tables, response tests, survival "
                "or biomarker comparison"
            )
        if lesion_table is not None:
            key = response.progression_key(plan)
            roles["progression"] = key
            _run_test(steps, tests, key, lambda: response.test_progression(lesion_table, plan))
            key = response.response_key(plan)
            roles["response"] = key
            _run_test(
                steps,
                tests,
                key,
                lambda: response.test_by_category(
                    lesion_table,
                    "value",
                    plan.response.column,
                    plan.response.categories,
                    lesions=True,
                ),
            )
        if patients is not None:
            for key, outcome in response.ihc_tests(patients, plan).items():
                column = next(
                    m.column
                    for m in plan.ihc
                    if key
                    in (response.ihc_kruskal_key(plan, m), response.ihc_spearman_key(plan, m))
                )
                kind = "ihc-rank" if key.endswith("(Spearman)") else "ihc"
                roles[f"{kind}:{column}"] = key
                _run_test(steps, tests, key, partial(_unwrap, outcome))
            lesion_values = (
                uptake.lesions[uptake.metric] if uptake is not None else pd.Series(dtype=float)
            )
            for endpoint in ("PFS", "OS"):
                part = steps.run(
                    f"{endpoint} by split of uptake",
                    partial(
                        response.split_survival, patients, lesion_values, endpoint, plan, notes
                    ),
                )
                if part is not None:
                    split[endpoint] = part
    finally:
        steps.close()

    analysis = StudyAnalysis(
        name=study.name if study is not None else str(provenance.get("study_name") or ""),
        tracer=study.tracer if study is not None else "",
        settings=settings,
        scans=scans,
        measurements=measurements,
        failures=failures,
        schedule=_schedule(scans),
        baseline=baseline,
        baseline_summary=summary,
        adverse_events=adverse,
        organ_uptake=organs,
        predose_ratio=ratio,
        blood=blood,
        blood_vs_image=blood_vs_image,
        visibility=visibility,
        tumour_to_blood=tbr,
        time_point=time_point,
        uptake=uptake,
        lesion_response=lesion_table,
        tests=tests,
        cohort_survival=cohort,
        split_survival=split,
        biomarkers=biomarkers,
        heterogeneity=heterogeneity,
        fdg_lesions=fdg_lesions,
        plan=plan,
        patient_clinical=patients,
        test_roles=roles,
        cohort_restricted_mean=cohort_rmst,
        blood_summary=blood_means,
        biodistribution_cohort=cohorts,
        visibility_extra=visibility_extra,
        target_engagement=engagement,
        warnings=_collect_warnings(tables, provenance, uptake),
        provenance=provenance,
        notes=list(dict.fromkeys(notes)),
        problems=list(dict.fromkeys(steps.problems)),
    )
    return replace(analysis, tables=analysis_tables(analysis))


def _unwrap(outcome: TestResult | Exception) -> TestResult:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _run_test(
    steps: _Steps, tests: dict[str, TestResult], key: str, compute: Callable[[], TestResult]
) -> None:
    result = steps.run(key, compute)
    if result is not None:
        tests[key] = result


def _require_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        raise _NotApplicableError("no organ VOIs measured")
    return frame


def _predose(measurements: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    present = set(measurements["series"].astype(str)) if "series" in measurements else set()
    wanted = (plan.reference_series, plan.comparison_series)
    missing = [s for s in wanted if s not in present]
    if missing:
        raise NotApplicableError(f"no {' or '.join(missing)} series")
    return _require_rows(
        predose_ratio(
            measurements, numerator=plan.comparison_series, denominator=plan.reference_series
        )
    )


def _adverse_events(study: Study | None, clinical: pd.DataFrame) -> pd.DataFrame:
    path = _input_path(study, study.inputs.adverse_events if study is not None else None)
    if path is None:
        raise _NotApplicableError("no adverse-event list")
    events = read_adverse_events(path, known_patients=clinical["patient"].astype(str).tolist())
    return adverse_event_table(events, n_patients=len(clinical))


def _blood(
    study: Study | None, tables: dict[str, pd.DataFrame], scans: pd.DataFrame
) -> pd.DataFrame:
    samples = _blood_samples(study, tables)
    path = _input_path(study, study.inputs.counter_calibration if study is not None else None)
    if path is None:
        raise _NotApplicableError("no well-counter calibration: counts cannot become activity")
    calibration = read_counter_calibration(path)
    return blood_activity(samples, calibration, weight_kg=_weights(scans))
