"""``immunopet inspect PATH [--json]``: every PET series under PATH and how its SUV was derived.

With ``--json`` one JSON object per PET series is printed (a list when there are several) with
the keys of the contract in DESIGN.md. When the SUV of a series cannot be derived, a one-line
error naming the file and the tag goes to stderr and the exit code is 2 (the other series are
still printed). No patient name, birth date or ID is ever printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from immunopet.errors import ImmunoPETError
from immunopet.io.dicom import discover_dicom
from immunopet.suv.factors import derive_suv, with_normalisation
from immunopet.suv.record import SuvDerivation, SuvOverrides


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="explain the SUV factors of every PET series under a folder",
        description="Find every PET series under PATH and explain how its SUV factor is derived.",
    )
    parser.add_argument("path", help="a DICOM folder tree (e.g. a PACS export) or one file")
    parser.add_argument("--json", action="store_true", help="print JSON (the stable contract)")
    parser.add_argument(
        "--normalisation",
        choices=("bw", "lbm", "bsa", "ibw"),
        default="bw",
        help="the SUV normalisation to explain (default bw; all factors are shown)",
    )
    add_override_arguments(parser)
    parser.set_defaults(func=run)


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that supply or replace header values; shared by the commands that compute SUV."""
    group = parser.add_argument_group("overrides (recorded as such with the result)")
    group.add_argument(
        "--injection-datetime",
        type=datetime.fromisoformat,
        metavar="YYYY-MM-DDTHH:MM[:SS]",
        help="injection date and time on the scanner clock (needed for 89Zr when the header "
        "has only a time of day)",
    )
    group.add_argument("--weight-kg", type=float, help="body weight in kg")
    group.add_argument("--height-m", type=float, help="body height in m (for SUL and SUVbsa)")
    group.add_argument(
        "--sex", choices=("M", "F", "O"), help="sex (for SUL and SUVibw; O = mean of M and F)"
    )
    group.add_argument(
        "--injected-activity-bq", type=float, help="injected activity at injection time, Bq"
    )
    group.add_argument("--half-life-s", type=float, help="radionuclide half-life, seconds")


def overrides_from(args: argparse.Namespace) -> SuvOverrides | None:
    """The SuvOverrides named on the command line, or None when there are none."""
    values = {
        "injection_datetime": args.injection_datetime,
        "weight_kg": args.weight_kg,
        "height_m": args.height_m,
        "sex": args.sex,
        "injected_activity_bq": args.injected_activity_bq,
        "half_life_s": args.half_life_s,
    }
    if all(value is None for value in values.values()):
        return None
    return SuvOverrides(**values)


def run(args: argparse.Namespace) -> int:
    inventory = discover_dicom(args.path, progress=sys.stderr.isatty() and not args.json)
    overrides = overrides_from(args)
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    for series in inventory.pet:
        try:
            derivation = with_normalisation(
                derive_suv(
                    series.headers, source=series.files[0], files=series.files, overrides=overrides
                ),
                getattr(args, "normalisation", "bw"),
            )
        except ImmunoPETError as error:
            failures.append(str(error))
            continue
        record = derivation.to_dict()
        record["n_slices"] = len(series.files)
        records.append(record)
        if not args.json:
            print(describe(derivation, len(series.files)))
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2))
    for path, reason in inventory.skipped:
        print(f"immunopet inspect: skipped {path}: {reason}", file=sys.stderr)
    if not inventory.pet:
        print(f"immunopet inspect: error: {args.path}: no PET series found", file=sys.stderr)
        return 2
    for message in failures:
        print(f"immunopet inspect: error: {message}", file=sys.stderr)
    return 2 if failures else 0


def describe(derivation: SuvDerivation, n_slices: int) -> str:
    """A readable explanation of one series' SUV factors, one quantity per line."""
    d = derivation
    src = dict(d.sources)

    def line(label: str, value: str, source: str | None = None) -> str:
        return f"  {label:<18} {value:<34} {source or ''}".rstrip()

    lines = [
        f"PET series {d.series_uid}",
        line("manufacturer", d.manufacturer or "(not given)"),
        line("slices", str(n_slices)),
        line("units", d.units, "(0054,1001) Units"),
        line("decay correction", d.decay_correction, "(0054,1102) DecayCorrection"),
        line("normalisation", f"{d.normalisation} (factor {d.factor(d.normalisation):.6g})"),
        line("branch", d.branch),
        line(
            "stored values",
            f"SUV type {d.suv_type}" if d.suv_type else "activity",
            src.get("stored_values", src.get("bqml_factor")),
        ),
        line("reference time", d.reference_time_rule or "(see source)"),
        line(
            "nuclide",
            f"{d.nuclide or '?'}, half-life {d.half_life_s / 3600:.2f} h",
            src.get("half_life_s"),
        ),
        line("injection", _when(d.injection_datetime), d.injection_time_source),
        line("scan reference", _when(d.scan_datetime), d.scan_time_source),
        line("after injection", f"{d.hours_after_injection:.2f} h"),
        line(
            "injected activity",
            f"{d.injected_activity_bq / 1e6:.3f} MBq",
            src.get("injected_activity_bq"),
        ),
    ]
    lines.append(line("weight", f"{d.weight_kg:g} kg", src.get("weight_kg")))
    if d.height_m is not None:
        lines.append(line("height", f"{d.height_m:g} m", src.get("height_m")))
    if d.sex is not None:
        lines.append(line("sex", d.sex, src.get("sex")))
    lines.append(
        line(
            "SUVbw factor",
            f"{d.suv_bw_factor:.6g} (g/mL per stored unit)",
            src.get("suv_bw_factor"),
        )
    )
    for label, value, unit in (
        ("SUL factor", d.suv_lbm_factor, "g/mL"),
        ("SUVbsa factor", d.suv_bsa_factor, "cm2/mL"),
        ("SUVibw factor", d.suv_ibw_factor, "g/mL"),
    ):
        text = "needs height and sex" if value is None else f"{value:.6g} ({unit} per stored unit)"
        lines.append(line(label, text))
    if d.slice_corrections:
        lines.append(line("per-slice decay", f"{len(d.slice_corrections)} slice factors"))
    for warning in d.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines) + "\n"


def _when(moment: datetime | None) -> str:
    return "(not known)" if moment is None else moment.isoformat(sep=" ")
