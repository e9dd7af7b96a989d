"""Orthanc's encoding names (the DefaultEncoding option, /tools/default-encoding) and the
Specific Character Set each stands for: one table for the configuration, the REST API
and the instances that create-dicom writes.
"""

from __future__ import annotations

from ..errors import ErrorCode, OrthancError

ENCODINGS = {
    "Ascii": "ISO_IR 6", "Utf8": "ISO_IR 192", "Latin1": "ISO_IR 100", "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109", "Latin4": "ISO_IR 110", "Latin5": "ISO_IR 148", "Cyrillic": "ISO_IR 144",
    "Windows1251": "ISO_IR 144", "Arabic": "ISO_IR 127", "Greek": "ISO_IR 126", "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166", "Japanese": "ISO_IR 13", "Chinese": "GB18030", "JapaneseKanji": "ISO 2022 IR 87",
    "Korean": "ISO 2022 IR 149", "SimplifiedChinese": "ISO 2022 IR 58",
}  # fmt: skip
_BY_KEY = {name.lower(): name for name in ENCODINGS}


def encoding_name(text: str) -> str | None:
    """The encoding a client names, in any letter case (Orthanc's spelling), None if unknown."""
    return _BY_KEY.get(text.lower())


def character_set_of(encoding: str) -> str:
    """Specific Character Set of one of the encoding names, or error 3."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown encoding: {encoding}") from None
