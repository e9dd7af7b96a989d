"""node.dicom.matching: how one query value reads (equal, list, wildcard, range) and what it matches."""

from __future__ import annotations

import pytest

from node.dicom.matching import Constraint, Kind, dictionary_vr, fold_case, parse_constraint
from node.errors import ErrorCode, OrthancError

PATIENT_NAME = 0x00100010  # PN: wildcards allowed
PATIENT_ID = 0x00100020  # LO
STUDY_DATE = 0x00080020  # DA: ranges
STUDY_TIME = 0x00080030  # TM: ranges
STUDY_INSTANCE_UID = 0x0020000D  # UI: no wildcards
ROWS = 0x00280010  # US
PIXEL_PADDING_VALUE = 0x00280120  # "US or SS" in the dictionary
PRIVATE_TAG = 0x00091001


def constraint(tag: int, text: str, *, case_sensitive: bool = False, vr: str | None = None) -> Constraint:
    parsed = parse_constraint(tag, text, case_sensitive=case_sensitive, vr=vr)
    assert parsed is not None
    return parsed


def test_dictionary_vr_takes_the_first_of_several_and_un_for_unknown_tags() -> None:
    assert dictionary_vr(PATIENT_NAME) == "PN"
    assert dictionary_vr(PIXEL_PADDING_VALUE) == "US"
    assert dictionary_vr(PRIVATE_TAG) == "UN"


def test_fold_case_upper_cases_and_drops_accents() -> None:
    assert fold_case("Müller^Jürgen") == "MULLER^JURGEN"
    assert fold_case("Ölé") == "OLE"
    assert fold_case("иванов") == "ИВАНОВ"  # other scripts are upper-cased too


@pytest.mark.parametrize("text", ["", "-"])
def test_values_that_constrain_nothing(text: str) -> None:
    assert parse_constraint(STUDY_DATE, text) is None


def test_each_kind_of_value() -> None:
    assert constraint(PATIENT_ID, "PAT1") == Constraint(PATIENT_ID, Kind.EQUAL, ("PAT1",))
    assert constraint(PATIENT_ID, "A\\B\\C") == Constraint(PATIENT_ID, Kind.LIST, ("A", "B", "C"))
    assert constraint(PATIENT_NAME, "DOE*").kind is Kind.WILDCARD
    assert constraint(STUDY_DATE, "20200101-20201231") == Constraint(STUDY_DATE, Kind.RANGE, ("20200101", "20201231"))
    # A hyphen is a range only for dates and times.
    assert constraint(PATIENT_NAME, "SMITH-JONES") == Constraint(PATIENT_NAME, Kind.EQUAL, ("SMITH-JONES",))


def test_the_vr_given_overrides_the_dictionary() -> None:
    assert constraint(PRIVATE_TAG, "2020-2021", vr="DA").kind is Kind.RANGE
    assert constraint(PRIVATE_TAG, "2020-2021").kind is Kind.EQUAL  # UN: no range


def test_wildcards_on_a_vr_without_them_are_error_3() -> None:
    with pytest.raises(OrthancError) as raised:
        parse_constraint(STUDY_INSTANCE_UID, "1.2.*")
    assert raised.value.code is ErrorCode.PARAMETER_OUT_OF_RANGE
    assert raised.value.details == "Wildcards are not allowed on tag 0020,000d"


def test_an_absent_value_never_matches() -> None:
    assert not constraint(PATIENT_ID, "PAT1").matches(None)
    assert not constraint(PATIENT_NAME, "*").matches(None)


def test_equal_and_list_ignore_case_and_accents_unless_asked() -> None:
    name = constraint(PATIENT_NAME, "muller^jurgen")
    assert name.matches("Müller^Jürgen") and not name.matches("Müller")
    strict = constraint(PATIENT_NAME, "Müller^Jürgen", case_sensitive=True)
    assert strict.matches("Müller^Jürgen") and not strict.matches("MÜLLER^JÜRGEN")
    ids = constraint(PATIENT_ID, "a\\b")
    assert ids.matches("A") and ids.matches("b") and not ids.matches("C")


def test_wildcards_match_the_whole_value() -> None:
    one = constraint(PATIENT_NAME, "KN?E")
    assert one.matches("knee") and not one.matches("KNE") and not one.matches("KNEES")
    many = constraint(PATIENT_NAME, "D*E")
    assert many.matches("DE") and many.matches("DOE") and many.matches("D\nE") and not many.matches("DOES")
    literal = constraint(PATIENT_NAME, "A.B(*")  # regular expression characters stand for themselves
    assert literal.matches("A.B(C") and not literal.matches("AXB(C")
    strict = constraint(PATIENT_NAME, "Kn*", case_sensitive=True)
    assert strict.matches("Knee") and not strict.matches("KNEE")


def test_ranges_compare_as_text_and_may_be_open() -> None:
    year = constraint(STUDY_DATE, "20200101-20201231")
    assert year.matches("20200101") and year.matches("20201231") and year.matches("20200615")
    assert not year.matches("20191231") and not year.matches("20210101")
    since = constraint(STUDY_DATE, "20200101-")
    assert since.matches("29991231") and not since.matches("19991231")
    until = constraint(STUDY_TIME, "-120000")
    assert until.matches("083000") and until.matches("120000") and not until.matches("120001")
