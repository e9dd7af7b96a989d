"""Rows for the index tests: what the ingest hands the index for one instance."""

from __future__ import annotations

from node.dicom.ids import Level, hierarchy_ids
from node.storage.index.base import ATTACHMENT_DICOM, Attachment, NewInstance

PATIENT, STUDY, SERIES = "PAT-1", "1.2.840.1", "1.2.840.1.1"


def new_instance(sop_uid: str, *, series_uid: str = SERIES, index_in_series: int | None = None,
                 expected: int | None = None, modality: str = "CT") -> NewInstance:  # fmt: skip
    """What the ingest hands the index for one instance of the test patient's study."""
    ids = hierarchy_ids(PATIENT, STUDY, series_uid, sop_uid)
    tags = {
        Level.PATIENT: {"0010,0010": "DOE^JOHN", "0010,0020": PATIENT},
        Level.STUDY: {"0020,000d": STUDY},
        Level.SERIES: {"0020,000e": series_uid, "0008,0060": modality},
        Level.INSTANCE: {"0008,0018": sop_uid},
    }
    identifiers = {
        Level.PATIENT: {"0010,0020": PATIENT},
        Level.STUDY: {"0020,000d": STUDY, "0010,0020": PATIENT},
        Level.SERIES: {"0020,000e": series_uid},
        Level.INSTANCE: {"0008,0018": sop_uid},
    }
    metadata = {"SopClassUid": "1.2.840.10008.5.1.4.1.1.2"}
    if index_in_series is not None:
        metadata["IndexInSeries"] = str(index_in_series)
    return NewInstance(
        ids=ids,
        tags=tags,
        identifiers=identifiers,
        attachment=Attachment(ATTACHMENT_DICOM, f"uuid-{sop_uid}", 100, 80, "md5", "md5c"),
        metadata=metadata,
        series_metadata={"ExpectedNumberOfInstances": str(expected)} if expected else {},
        last_update="20240101T120000",
        index_in_series=str(index_in_series) if index_in_series is not None else None,
        expected_instances=expected,
    )
