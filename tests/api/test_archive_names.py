"""ZIP entry names stay inside the archive, whatever the tags they are made of.

Orthanc 1.10.1 names the file of a patient whose PatientID, AccessionNumber and
SeriesDescription are `..` (other names empty) `../../../00000000.dcm`: a naive
extractor writes it three folders above its target. Here such a name becomes the
fallback Orthanc uses for an empty one.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import httpx
import pytest

from node.errors import OrthancError
from node.services.archive_names import check_entry_path
from tests.support.datasets import make_dicom

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_names(names: list[str]) -> None:
    for name in names:
        assert not name.startswith("/") and "\\" not in name and not _CONTROL.search(name), name
        assert all(component.strip(". ") for component in name.split("/")), name


def _extract_inside(archive: bytes, folder: Path) -> list[Path]:
    """Extract as a careful tool would, checking first that every entry lands inside ``folder``."""
    root = folder.resolve()
    written = []
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for info in zipped.infolist():
            target = (root / info.filename).resolve()
            assert target.is_relative_to(root), info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zipped.read(info))
            written.append(target)
    return written


async def test_dot_names_stay_inside(http: httpx.AsyncClient, tmp_path: Path) -> None:
    dots = make_dicom(
        patient_id="..", patient_name="", AccessionNumber="..", StudyDescription="", SeriesDescription="..", modality=""
    )
    patient = (await http.post("/instances", content=dots)).json()["ParentPatient"]
    archive = await http.get(f"/patients/{patient}/archive")
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert names == ["Unknown Patient/Unknown Study/Unknown Series/00000000.dcm"]
    (tmp_path / "out").mkdir()
    assert len(_extract_inside(archive.content, tmp_path / "out")) == 1


async def test_separators_and_control_characters_are_dropped(http: httpx.AsyncClient, tmp_path: Path) -> None:
    odd = make_dicom(
        patient_id="a/b\\c", patient_name="x\x01y\tz", AccessionNumber=". .", StudyDescription="",
        SeriesDescription="s/../t", modality="CT",
    )  # fmt: skip
    plain = make_dicom(patient_id="PLAIN", patient_name="DOE^JANE")
    patients = [(await http.post("/instances", content=data)).json()["ParentPatient"] for data in (odd, plain)]
    archive = await http.post("/tools/create-archive", json={"Resources": patients})
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    _check_names(names)
    assert sorted(names) == [
        "PLAIN DOE JANE/Test study/CT/CT000000.dcm",
        "abc xy z/Unknown Study/CT s..t/CT000000.dcm",
    ]
    (tmp_path / "out").mkdir()
    assert len(_extract_inside(archive.content, tmp_path / "out")) == 2


@pytest.mark.parametrize(
    "path", ["../x.dcm", "/x.dcm", "a//x.dcm", "a/./x.dcm", "a/. ./x.dcm", "C:/x.dcm", "a\\..\\x.dcm", "a/x\0.dcm"]
)
def test_unsafe_entry_paths_are_refused(path: str) -> None:
    with pytest.raises(OrthancError):
        check_entry_path(path)


def test_ordinary_entry_paths_pass() -> None:
    for path in ("PAT DOE/Study/CT 1/CT000000.dcm", "IMAGES/IM0", "DICOMDIR", "..a/b../x.dcm"):
        check_entry_path(path)
