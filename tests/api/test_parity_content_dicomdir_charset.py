"""A DICOMDIR of patients with names beyond ASCII reads with DCMTK's dcm2xml.

dcm2xml refuses a DICOMDIR whose records hold such text while the directory itself
declares no character set ("extended characters used in file"), and with
--convert-to-utf8 it refuses records that declare a character set it cannot convert.
Records of such text are written in UTF-8 and say so, as does the directory.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx

from tests.support.datasets import make_dataset
from tests.support.dcmtk import dcmtk_tool, needs_dcmtk, run_dcmtk
from tests.support.rest import upload

DCM2XML = dcmtk_tool("dcm2xml")
NAMES = {
    "ISO_IR 100": "Müller^Jürgen",
    "ISO_IR 144": "Иванов^Иван",
    "ISO_IR 192": "Wang^XiaoDong=王^小東",
    "\\ISO 2022 IR 87": "Yamada^Tarou=山田^太郎",
}


@needs_dcmtk(DCM2XML)
async def test_dicomdir_of_non_ascii_names_reads_with_dcm2xml(http: httpx.AsyncClient, tmp_path: Path) -> None:
    patients = []
    for number, (charset, name) in enumerate(NAMES.items()):
        dataset = make_dataset(patient_id=f"P{number}", patient_name=name, SpecificCharacterSet=charset)
        patients.append((await upload(http, dataset))["ParentPatient"])
    answer = await http.post("/tools/create-media", json=patients)
    assert answer.status_code == 200
    zipfile.ZipFile(io.BytesIO(answer.content)).extractall(tmp_path)
    for options in ((), ("--convert-to-utf8",)):
        result = await run_dcmtk(DCM2XML, *options, str(tmp_path / "DICOMDIR"))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        xml = result.stdout.decode("utf-8")
        assert 'encoding="UTF-8"' in xml
        for name in NAMES.values():
            assert f'name="PatientName">{name}</element>' in xml
