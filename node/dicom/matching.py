"""C-FIND style constraints on tag values: value lists, wildcards and date/time ranges.

Shared by /tools/find and any DICOM query handler, so both read a query the same way
(Orthanc matches both alike). Pure: values come in as strings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import Enum

from pydicom import datadict

from ..errors import ErrorCode, OrthancError
from .tags import WILDCARD_VRS, format_tag

RANGE_VRS = frozenset(["DA", "DT", "TM"])


def dictionary_vr(tag: int) -> str:
    """The VR the dictionary gives a tag (the first one when several are allowed)."""
    try:
        return datadict.dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


def fold_case(text: str) -> str:
    """Case-insensitive form of a value: upper case, accents removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


class Kind(Enum):
    EQUAL = "equal"
    LIST = "list"
    WILDCARD = "wildcard"
    RANGE = "range"


@dataclass(frozen=True)
class Constraint:
    """One tag's condition. ``values`` holds the alternatives, or (lower, upper) of a range."""

    tag: int
    kind: Kind
    values: tuple[str, ...]
    case_sensitive: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def _fold(self, text: str) -> str:
        return text if self.case_sensitive else fold_case(text)

    def matches(self, value: str | None) -> bool:
        """Whether a stored value meets the condition; an absent (None) value never does."""
        if value is None:
            return False
        folded = self._fold(value)
        if self.kind is Kind.RANGE:
            lower, upper = (self._fold(v) for v in self.values)
            # Plain string order, as Orthanc compares DA/DT/TM bounds.
            return (not lower or folded >= lower) and (not upper or folded <= upper)
        if self.kind is Kind.WILDCARD:
            assert self._pattern is not None
            return self._pattern.fullmatch(folded) is not None
        return any(folded == self._fold(v) for v in self.values)


def _wildcard_pattern(text: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text]
    return re.compile("".join(parts), re.DOTALL)


def parse_constraint(tag: int, text: str, *, case_sensitive: bool = False, vr: str | None = None) -> Constraint | None:
    """Read one query value; None when it constrains nothing (empty value, open range).

    Wildcards on a VR that does not allow them are error 3, as in Orthanc 1.10.1
    (the DICOM standard would read them literally).
    """
    if not text:
        return None
    vr = vr or dictionary_vr(tag)
    if vr in RANGE_VRS and "-" in text:
        lower, _, upper = text.partition("-")
        if not lower and not upper:
            return None
        return Constraint(tag, Kind.RANGE, (lower, upper), case_sensitive)
    if "\\" in text:
        return Constraint(tag, Kind.LIST, tuple(text.split("\\")), case_sensitive)
    if "*" in text or "?" in text:
        if vr not in WILDCARD_VRS:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Wildcards are not allowed on tag {format_tag(tag)}")
        folded = text if case_sensitive else fold_case(text)
        return Constraint(tag, Kind.WILDCARD, (text,), case_sensitive, _wildcard_pattern(folded))
    return Constraint(tag, Kind.EQUAL, (text,), case_sensitive)
