"""Modify and anonymize requests parsed into a :class:`ModificationPlan` (the first stage of a rewrite).

The requests are Orthanc's: https://book.orthanc-server.com/users/anonymization.html

A body is validated and turned into a plan once, at submission: every error of the
request itself surfaces there. The rules that Orthanc checks while modifying (level
rules, removed identifiers) are checked by :mod:`.rewrite` when the plan is applied.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID

from ..body_fields import boolean, json_object, optional_string, string, string_list
from ..errors import ErrorCode, OrthancError
from .anonymization_profiles import DEFAULT_PROFILE, profiles
from .ids import Level, parse_level
from .json_elements import check_shape
from .tag_numbers import (
    DEIDENTIFICATION_METHOD,
    HIERARCHY_TAGS,
    PATIENT_ID,
    PATIENT_IDENTITY_REMOVED,
    PATIENT_NAME,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from .tag_paths import TagPath, parse_path

# The identifier that a modification at each level regenerates, from the top down.
LEVEL_UIDS = (
    (Level.STUDY, STUDY_INSTANCE_UID),
    (Level.SERIES, SERIES_INSTANCE_UID),
    (Level.INSTANCE, SOP_INSTANCE_UID),
)


class Action(enum.Enum):
    """What happens to one top-level tag (CLEAR: emptied, only if present)."""

    REMOVE = "remove"
    CLEAR = "clear"
    REPLACE = "replace"
    KEEP = "keep"


@dataclass(frozen=True)
class ModificationPlan:
    """Everything one modification or anonymization does to each instance.

    ``request`` holds what the plan was parsed from, so that a saved job
    rebuilds the very same plan (see :meth:`to_json`).
    """

    request: dict[str, Any]
    is_anonymization: bool
    level: Level
    # Top-level tags: what to do with each (the last of profile, Remove, Replace, Keep wins).
    actions: Mapping[int, tuple[Action, Any]]
    path_removals: tuple[TagPath, ...] = ()
    path_replacements: tuple[tuple[TagPath, Any], ...] = ()
    # Anonymization: tags whose UIDs are mapped wherever they occur, and tag ranges to delete.
    uid_tags: frozenset[int] = frozenset()
    remove_ranges: tuple[tuple[int, int, int, int], ...] = ()
    remove_private_tags: bool = False
    map_patient_id: bool = False
    # Anonymization: PatientName is still to be set to `Anonymized<N>` by whoever owns the counter.
    needs_patient_name: bool = False
    private_creator: str = ""
    keep_source: bool = True
    transcode: str | None = None

    def with_patient_name(self, name: str) -> ModificationPlan:
        actions = {**self.actions, PATIENT_NAME: (Action.REPLACE, name)}
        request = {**self.request, "PatientName": name}
        return dataclasses.replace(self, actions=actions, needs_patient_name=False, request=request)

    def replaced(self, tag: int) -> bool:
        if tag == PATIENT_ID and self.map_patient_id:
            return True
        return self.actions.get(tag, (None,))[0] is Action.REPLACE

    def kept(self, tag: int) -> bool:
        return self.actions.get(tag, (None,))[0] is Action.KEEP

    def to_json(self) -> dict[str, Any]:
        """Plain JSON from which :func:`plan_from_json` rebuilds this plan (saved jobs)."""
        return dict(self.request)


def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    return boolean(body.get(name, default), ErrorCode.BAD_FILE_FORMAT, f'Member "{name}" should be a Boolean value')


def _string(body: Mapping[str, Any], name: str, default: str | None) -> str | None:
    value = body.get(name, default)
    return optional_string(value, ErrorCode.BAD_FILE_FORMAT, f"String value expected in field: {name}")


def _object(body: Any) -> dict[str, Any]:
    return json_object(body, ErrorCode.BAD_FILE_FORMAT, "The body must be a JSON object")


def _paths(body: Mapping[str, Any], field_name: str) -> list[TagPath]:
    return [parse_path(n) for n in string_list(body.get(field_name, []), ErrorCode.BAD_REQUEST)]


def _check_force(path: TagPath, force: bool, verb: str) -> None:
    if path.top_level and path.tag in HIERARCHY_TAGS and not force:
        raise OrthancError(
            ErrorCode.BAD_REQUEST,
            f'Marking tag "{path.text}" as to be {verb} requires the "Force" option to be set to true',
        )


@dataclass
class _Builder:
    """Collects the user's Remove, Replace and Keep over a base (profile) in Orthanc's order."""

    actions: dict[int, tuple[Action, Any]] = field(default_factory=dict)
    uid_tags: set[int] = field(default_factory=set)
    path_removals: list[TagPath] = field(default_factory=list)
    path_replacements: list[tuple[TagPath, Any]] = field(default_factory=list)
    user_touched: set[int] = field(default_factory=set)

    def set(self, tag: int, action: Action, value: Any = None) -> None:
        self.actions[tag] = (action, value)
        self.uid_tags.discard(tag)
        self.user_touched.add(tag)

    def read(self, body: Mapping[str, Any], force: bool) -> None:
        for path in _paths(body, "Remove"):
            _check_force(path, force, "removed")
            if path.top_level:
                self.set(path.tag, Action.REMOVE)
            else:
                self.path_removals.append(path)
        replacements = json_object(body.get("Replace", {}), ErrorCode.BAD_REQUEST)
        for name, value in replacements.items():
            path = parse_path(name)
            _check_force(path, force, "replaced")
            check_shape(path.tag, value)
            if path.top_level:
                self.set(path.tag, Action.REPLACE, value)
            else:
                self.path_replacements.append((path, value))
        for path in _paths(body, "Keep"):
            _check_force(path, force, "kept")
            if path.top_level:  # a kept path inside a sequence is accepted and has no effect
                self.set(path.tag, Action.KEEP)


def _deduced_level(actions: Mapping[int, tuple[Action, Any]]) -> Level:
    """The level of /instances/{id}/modify and bulk-modify: the highest identifier replaced."""
    for level, tag in ((Level.PATIENT, PATIENT_ID), *LEVEL_UIDS):
        if actions.get(tag, (None,))[0] is Action.REPLACE:
            return level
    return Level.INSTANCE


def _transcode(body: Mapping[str, Any], job: bool) -> str | None:
    syntax = _string(body, "Transcode", None)
    if syntax is not None and not UID(syntax).is_transfer_syntax:
        code = ErrorCode.BAD_FILE_FORMAT if job else ErrorCode.PARAMETER_OUT_OF_RANGE
        raise OrthancError(code, f"Unknown transfer syntax: {syntax}")
    return syntax


def parse_modify_request(
    body: Any, *, level: Level | None, default_private_creator: str = "", job: bool = False
) -> ModificationPlan:
    """The plan of a /modify body. ``level`` None: deduced from Replace (instance route, bulk)."""
    body = _object(body)
    force = _bool(body, "Force", False)
    remove_private = _bool(body, "RemovePrivateTags", False)
    creator = _string(body, "PrivateCreator", default_private_creator) or ""
    transcode = _transcode(body, job)
    keep_source = _bool(body, "KeepSource", True) if job else True
    builder = _Builder()
    builder.read(body, force)
    return ModificationPlan(
        request={
            "Body": body,
            "Anonymization": False,
            "Level": None if level is None else level.title,
            "Job": job,
            "DefaultPrivateCreator": default_private_creator,
        },
        is_anonymization=False,
        level=_deduced_level(builder.actions) if level is None else level,
        actions=builder.actions,
        path_removals=tuple(builder.path_removals),
        path_replacements=tuple(builder.path_replacements),
        remove_private_tags=remove_private,
        private_creator=creator,
        keep_source=keep_source,
        transcode=transcode,
    )


def parse_anonymize_request(body: Any, *, default_private_creator: str = "", job: bool = False) -> ModificationPlan:
    """The plan of an /anonymize body; the caller then fills PatientName if ``needs_patient_name``."""
    body = _object(body)
    version = string(body.get("DicomVersion", DEFAULT_PROFILE), ErrorCode.BAD_FILE_FORMAT)
    profile = profiles().get(version)
    if profile is None:
        raise OrthancError(
            ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown specific version of the DICOM standard: {version}"
        )
    force = _bool(body, "Force", False)
    keep_private = _bool(body, "KeepPrivateTags", False)
    creator = _string(body, "PrivateCreator", default_private_creator) or ""
    keep_source = _bool(body, "KeepSource", True) if job else True
    builder = _Builder()
    builder.actions = {tag: (Action.REMOVE, None) for tag in profile.remove}
    builder.actions.update({tag: (Action.CLEAR, None) for tag in profile.clear})
    builder.actions[PATIENT_IDENTITY_REMOVED] = (Action.REPLACE, "YES")
    builder.uid_tags = set(profile.uid)
    builder.read(body, force)
    customized = bool(body.get("Replace") or body.get("Remove") or body.get("Keep")) or keep_private
    if not customized:
        builder.actions[DEIDENTIFICATION_METHOD] = (Action.REPLACE, profile.method)
    return ModificationPlan(
        request={"Body": body, "Anonymization": True, "Job": job, "DefaultPrivateCreator": default_private_creator},
        is_anonymization=True,
        level=Level.PATIENT,
        actions=builder.actions,
        path_removals=tuple(builder.path_removals),
        path_replacements=tuple(builder.path_replacements),
        uid_tags=frozenset(builder.uid_tags),
        remove_ranges=profile.remove_ranges,
        remove_private_tags=not keep_private,
        map_patient_id=PATIENT_ID not in builder.user_touched,
        needs_patient_name=PATIENT_NAME not in builder.user_touched,
        private_creator=creator,
        keep_source=keep_source,
        transcode=_transcode(body, job) if job else None,  # the instance route ignores it, as Orthanc 1.10.1
    )


def plan_from_json(data: Mapping[str, Any]) -> ModificationPlan:
    """Rebuild a plan saved by :meth:`ModificationPlan.to_json`."""
    creator = data.get("DefaultPrivateCreator", "")
    job = bool(data.get("Job", False))
    if data.get("Anonymization"):
        plan = parse_anonymize_request(data["Body"], default_private_creator=creator, job=job)
    else:
        level = parse_level(data["Level"]) if data.get("Level") else None
        plan = parse_modify_request(data["Body"], level=level, default_private_creator=creator, job=job)
    name = data.get("PatientName")
    return plan.with_patient_name(name) if isinstance(name, str) else plan


def bulk_level(body: Any) -> Level | None:
    """The optional `Level` of /tools/bulk-modify (None: deduced from Replace)."""
    text = _string(_object(body), "Level", None)
    if text is None:
        return None
    level = parse_level(text)
    if level is None:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    return level
