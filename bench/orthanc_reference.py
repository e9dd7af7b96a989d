"""Record how real Orthanc 1.10.1 indexes every file of the shared test data.

    python bench/orthanc_reference.py [--testdata DIR] [--output FILE]

Starts Orthanc (bench/orthanc_process.py) on an empty temporary storage, uploads
every file of the test data folder with POST /instances in sorted path order, and
saves, per file (keyed by its path relative to the folder, with `/` separators):
the upload status and the four Orthanc IDs, then, once all files are in, the
MainDicomTags of the instance, series, study and patient (and the study's
PatientMainDicomTags) as Orthanc answers them. Files Orthanc refuses are listed
with the HTTP status it gave; the global counts come from /statistics.

tests/interop/test_testdata_identity.py replays the same uploads against our node and
compares. The result is committed as tests/data/orthanc_reference.json, so the
tests need neither Orthanc nor this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.orthanc_process import orthanc_process
from tests.support.datasets import SHARED_TESTDATA

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "tests" / "data" / "orthanc_reference.json"

# Not sent at all: documentation, and a file that makes Orthanc 1.10.1 crash.
SKIPPED = {"README.md"}
EXCLUDED = {"2026-05-06-Deeply-Nested-Sequence.dcm": "crashes Orthanc 1.10.1 (stack overflow in the parser)"}

LEVELS = (("Patient", "patients", "ParentPatient"), ("Study", "studies", "ParentStudy"))
LEVELS += (("Series", "series", "ParentSeries"), ("Instance", "instances", "ID"))


def testdata_files(folder: Path) -> list[str]:
    """Relative paths of the files to upload, in the order both servers receive them."""
    paths = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(p for p in paths if p not in SKIPPED and p not in EXCLUDED)


def _resource(client: httpx.Client, cache: dict[str, dict[str, Any]], route: str) -> dict[str, Any]:
    if route not in cache:
        answer = client.get(route)
        answer.raise_for_status()
        cache[route] = answer.json()
    return cache[route]


def collect(client: httpx.Client, folder: Path) -> dict[str, Any]:
    uploads: dict[str, dict[str, Any]] = {}
    rejected: dict[str, int] = {}
    for relative in testdata_files(folder):
        answer = client.post("/instances", content=(folder / relative).read_bytes())
        if answer.status_code != 200:
            rejected[relative] = answer.status_code
            continue
        body = answer.json()
        uploads[relative] = {key: body[key] for key in ("Status", "ID", "ParentPatient", "ParentStudy", "ParentSeries")}

    cache: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    for relative, upload in uploads.items():
        record: dict[str, Any] = dict(upload)
        for title, plural, key in LEVELS:
            resource = _resource(client, cache, f"/{plural}/{upload[key]}")
            record[title] = {"MainDicomTags": resource["MainDicomTags"]}
            if title == "Study":
                record[title]["PatientMainDicomTags"] = resource["PatientMainDicomTags"]
        files[relative] = record
    statistics = client.get("/statistics").json()
    counts = {key: statistics[key] for key in ("CountPatients", "CountStudies", "CountSeries", "CountInstances")}
    version = client.get("/system").json()["Version"]
    return {"OrthancVersion": version, "Counts": counts, "Excluded": EXCLUDED, "Rejected": rejected, "Files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", type=Path, default=SHARED_TESTDATA, help="folder of DICOM files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file to write")
    args = parser.parse_args(argv)
    if not args.testdata.is_dir():
        print(f"no test data folder at {args.testdata}", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="orthanc-reference-") as temporary,
        orthanc_process(Path(temporary)) as orthanc,
        httpx.Client(base_url=orthanc.http_url, timeout=60) as client,
    ):
        reference = collect(client, args.testdata)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(reference, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(reference['Files'])} files recorded, {len(reference['Rejected'])} rejected: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
