"""Exports and analysis tables are written atomically: a failure mid-write leaves no partial
file and the previous file as it was.

Each writer is made to fail after it has written part of its file (the library call it uses
is replaced by one that writes some bytes and raises); the folder is then compared with what
it held before. One test kills a writing process with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from immunopet.image import ImageVolume
from immunopet.io.atomic import atomic_path, write_text_atomically
from immunopet.io.nifti import write_nifti, write_sidecar

OLD = "the previous, complete file\n"


class BoomError(RuntimeError):
    pass


def _half_then_fail(path: Any, *args: Any, **kwargs: Any) -> None:
    Path(path).write_bytes(b"half a fi")
    raise BoomError("disk full")


def _writer_fails(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
    """Stands for ``DataFrame.to_csv``, ``Dataset.save_as``, ``nibabel.save``: (what, where)."""
    _half_then_fail(path)


def _folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_atomic_path_failure_keeps_the_old_file_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text(OLD)
    before = _folder(tmp_path)
    with pytest.raises(BoomError), atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".tmp.csv")
        _half_then_fail(temporary)
    assert _folder(tmp_path) == before
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_text("partial")
        raise KeyboardInterrupt
    assert _folder(tmp_path) == before


def test_atomic_path_success_replaces_and_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.json"
    write_text_atomically(target, "{}\n")
    assert target.read_text() == "{}\n" and _folder(target.parent) == {"x.json": b"{}\n"}
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_killed_writer_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "analysis.json"
    target.write_text(OLD)
    code = textwrap.dedent(
        f"""
        import sys, time
        from immunopet.io.atomic import atomic_path
        with atomic_path({str(target)!r}) as temporary:
            with open(temporary, "w") as stream:
                stream.write("half")
                stream.flush()
                print("writing", flush=True)
                time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"writing"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert target.read_text() == OLD
    left = [p.name for p in tmp_path.iterdir() if p.name != "analysis.json"]
    assert all(name.startswith(".analysis.json.") and name.endswith(".tmp.json") for name in left)


def test_analysis_tables_failure_mid_write(tmp_path: Path, monkeypatch: Any) -> None:
    from immunopet.analysis import export

    folder = tmp_path / export.ANALYSIS_FOLDER
    folder.mkdir()
    (folder / "lesion_uptake.csv").write_text(OLD)
    (folder / "analysis.json").write_text(OLD)
    before = _folder(folder)
    analysis = type("A", (), {"tables": {"lesion_uptake": pd.DataFrame({"a": [1]})}})()
    monkeypatch.setattr(pd.DataFrame, "to_csv", _writer_fails)
    with pytest.raises(BoomError):
        export.write_analysis_tables(analysis, tmp_path)  # type: ignore[arg-type]
    assert _folder(folder) == before
    monkeypatch.undo()
    monkeypatch.setattr(export, "_plan_json", lambda analysis: {})
    original = Path.write_text

    def json_fails(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name.endswith(".tmp.json"):
            _half_then_fail(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", json_fails)
    with pytest.raises(BoomError):
        export.write_analysis_tables(analysis, tmp_path)  # type: ignore[arg-type]
    after = _folder(folder)
    assert after["analysis.json"] == OLD.encode()  # the JSON kept, the CSV (complete) new
    assert set(after) == {"lesion_uptake.csv", "analysis.json"}
    assert pd.read_csv(folder / "lesion_uptake.csv")["a"].tolist() == [1]


def test_dicom_export_failure_mid_write(tmp_path: Path, monkeypatch: Any) -> None:
    from immunopet.exports.dicom_export import write_dicom

    target = tmp_path / "sr.dcm"
    target.write_text(OLD)
    before = _folder(tmp_path)
    dataset = pydicom.Dataset()
    monkeypatch.setattr(pydicom.Dataset, "save_as", _writer_fails)
    with pytest.raises(BoomError):
        write_dicom(dataset, target)
    assert _folder(tmp_path) == before


def _volume() -> ImageVolume:
    return ImageVolume(np.ones((2, 3, 4), dtype=np.float32), np.eye(4))


def test_nifti_and_sidecar_failure_mid_write(tmp_path: Path, monkeypatch: Any) -> None:
    image = tmp_path / "sub-01_pet.nii.gz"
    sidecar = tmp_path / "sub-01_pet.json"
    image.write_text(OLD)
    sidecar.write_text(OLD)
    before = _folder(tmp_path)
    monkeypatch.setattr(nib, "save", _writer_fails)
    with pytest.raises(BoomError):
        write_nifti(_volume(), image, sidecar={"Units": "g/mL"})
    assert _folder(tmp_path) == before
    monkeypatch.undo()
    # the image written (complete), then the sidecar fails: image new, sidecar old, no partial
    original = Path.write_text

    def sidecar_fails(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name.endswith(".tmp.json"):
            _half_then_fail(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", sidecar_fails)
    with pytest.raises(BoomError):
        write_nifti(_volume(), image, sidecar={"Units": "g/mL"})
    with pytest.raises(BoomError):
        write_sidecar({"Units": "g/mL"}, sidecar)
    assert sorted(_folder(tmp_path)) == sorted([image.name, sidecar.name])
    assert sidecar.read_text() == OLD
    assert nib.load(image).shape == (4, 3, 2)


def test_bids_tsv_failure_mid_write(tmp_path: Path, monkeypatch: Any) -> None:
    from immunopet.study import bids_export

    target = tmp_path / "participants.tsv"
    target.write_text(OLD)
    before = _folder(tmp_path)
    monkeypatch.setattr(pd.DataFrame, "to_csv", _writer_fails)
    with pytest.raises(BoomError):
        bids_export._write_tsv(pd.DataFrame({"participant_id": ["sub-01"]}), target)
    assert _folder(tmp_path) == before
