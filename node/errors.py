"""Orthanc's error codes as one exception hierarchy.

Every layer raises :class:`OrthancError`; only the HTTP layer turns it into a
status line and Orthanc's JSON body of errors, so the mapping lives in one place.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    INTERNAL_ERROR = -1
    SUCCESS = 0
    PLUGIN = 1
    NOT_IMPLEMENTED = 2
    PARAMETER_OUT_OF_RANGE = 3
    NOT_ENOUGH_MEMORY = 4
    BAD_PARAMETER_TYPE = 5
    BAD_SEQUENCE_OF_CALLS = 6
    INEXISTENT_ITEM = 7
    BAD_REQUEST = 8
    NETWORK_PROTOCOL = 9
    SYSTEM_COMMAND = 10
    DATABASE = 11
    URI_SYNTAX = 12
    INEXISTENT_FILE = 13
    CANNOT_WRITE_FILE = 14
    BAD_FILE_FORMAT = 15
    TIMEOUT = 16
    UNKNOWN_RESOURCE = 17
    INCOMPATIBLE_DATABASE_VERSION = 18
    FULL_STORAGE = 19
    CORRUPTED_FILE = 20
    INEXISTENT_TAG = 21
    READ_ONLY = 22
    INCOMPATIBLE_IMAGE_FORMAT = 23
    INCOMPATIBLE_IMAGE_SIZE = 24
    SHARED_LIBRARY = 25
    UNKNOWN_PLUGIN_SERVICE = 26
    UNKNOWN_DICOM_TAG = 27
    BAD_JSON = 28
    UNAUTHORIZED = 29
    BAD_FONT = 30
    DATABASE_PLUGIN = 31
    STORAGE_AREA_PLUGIN = 32
    EMPTY_REQUEST = 33
    NOT_ACCEPTABLE = 34
    NULL_POINTER = 35
    DATABASE_UNAVAILABLE = 36
    CANCELED_JOB = 37
    BAD_GEOMETRY = 38
    SSL_INITIALIZATION = 39
    DISCONTINUED_ABI = 40
    BAD_RANGE = 41
    DATABASE_CANNOT_SERIALIZE = 42
    REVISION = 43
    DICOM_FIND_UNAVAILABLE = 2016
    DICOM_MOVE_UNAVAILABLE = 2017
    CANNOT_STORE_INSTANCE = 2018
    CREATE_DICOM_NOT_STRING = 2019
    CREATE_DICOM_OVERRIDE_TAG = 2020
    CREATE_DICOM_USE_CONTENT = 2021
    CREATE_DICOM_NO_PAYLOAD = 2022
    CREATE_DICOM_USE_DATA_URI_SCHEME = 2023
    CREATE_DICOM_BAD_PARENT = 2024
    CREATE_DICOM_PARENT_IS_INSTANCE = 2025
    CREATE_DICOM_PARENT_ENCODING = 2026
    UNKNOWN_MODALITY = 2027
    CANNOT_ORDER_SLICES = 2040
    ALREADY_EXISTING_TAG = 2042
    UNSUPPORTED_MEDIA_TYPE = 3000


DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.INTERNAL_ERROR: "Internal error",
    ErrorCode.SUCCESS: "Success",
    ErrorCode.PLUGIN: "Error encountered within the plugin engine",
    ErrorCode.NOT_IMPLEMENTED: "Not implemented yet",
    ErrorCode.PARAMETER_OUT_OF_RANGE: "Parameter out of range",
    ErrorCode.NOT_ENOUGH_MEMORY: "The server hosting Orthanc is running out of memory",
    ErrorCode.BAD_PARAMETER_TYPE: "Bad type for a parameter",
    ErrorCode.BAD_SEQUENCE_OF_CALLS: "Bad sequence of calls",
    ErrorCode.INEXISTENT_ITEM: "Accessing an inexistent item",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.NETWORK_PROTOCOL: "Error in the network protocol",
    ErrorCode.SYSTEM_COMMAND: "Error while calling a system command",
    ErrorCode.DATABASE: "Error with the database engine",
    ErrorCode.URI_SYNTAX: "Badly formatted URI",
    ErrorCode.INEXISTENT_FILE: "Inexistent file",
    ErrorCode.CANNOT_WRITE_FILE: "Cannot write to file",
    ErrorCode.BAD_FILE_FORMAT: "Bad file format",
    ErrorCode.TIMEOUT: "Timeout",
    ErrorCode.UNKNOWN_RESOURCE: "Unknown resource",
    ErrorCode.INCOMPATIBLE_DATABASE_VERSION: "Incompatible version of the database",
    ErrorCode.FULL_STORAGE: "The file storage is full",
    ErrorCode.CORRUPTED_FILE: "Corrupted file (e.g. inconsistent MD5 hash)",
    ErrorCode.INEXISTENT_TAG: "Inexistent tag",
    ErrorCode.READ_ONLY: "Cannot modify a read-only data structure",
    ErrorCode.INCOMPATIBLE_IMAGE_FORMAT: "Incompatible format of the images",
    ErrorCode.INCOMPATIBLE_IMAGE_SIZE: "Incompatible size of the images",
    ErrorCode.SHARED_LIBRARY: "Error while using a shared library (plugin)",
    ErrorCode.UNKNOWN_PLUGIN_SERVICE: "Plugin invoking an unknown service",
    ErrorCode.UNKNOWN_DICOM_TAG: "Unknown DICOM tag",
    ErrorCode.BAD_JSON: "Cannot parse a JSON document",
    ErrorCode.UNAUTHORIZED: "Bad credentials were provided to an HTTP request",
    ErrorCode.BAD_FONT: "Badly formatted font file",
    ErrorCode.DATABASE_PLUGIN: "The plugin implementing a custom database back-end does not fulfill the proper interface",
    ErrorCode.STORAGE_AREA_PLUGIN: "Error in the plugin implementing a custom storage area",
    ErrorCode.EMPTY_REQUEST: "The request is empty",
    ErrorCode.NOT_ACCEPTABLE: "Cannot send a response which is acceptable according to the Accept HTTP header",
    ErrorCode.NULL_POINTER: "Cannot handle a NULL pointer",
    ErrorCode.DATABASE_UNAVAILABLE: "The database is currently not available (probably a transient situation)",
    ErrorCode.CANCELED_JOB: "This job was canceled",
    ErrorCode.BAD_GEOMETRY: "Geometry error encountered in Stone",
    ErrorCode.SSL_INITIALIZATION: "Cannot initialize SSL encryption, check out your certificates",
    ErrorCode.DISCONTINUED_ABI: "Calling a function that has been removed from the Orthanc Framework",
    ErrorCode.BAD_RANGE: "Incorrect range request",
    ErrorCode.DATABASE_CANNOT_SERIALIZE: "Database could not serialize access due to concurrent update, the transaction should be retried",
    ErrorCode.REVISION: "A bad revision number was provided, which might indicate conflict between multiple writers",
    ErrorCode.DICOM_FIND_UNAVAILABLE: "DicomUserConnection: The C-FIND command is not supported by the remote SCP",
    ErrorCode.DICOM_MOVE_UNAVAILABLE: "DicomUserConnection: The C-MOVE command is not supported by the remote SCP",
    ErrorCode.CANNOT_STORE_INSTANCE: "Cannot store an instance",
    ErrorCode.CREATE_DICOM_NOT_STRING: "Only string values are supported when creating DICOM instances",
    ErrorCode.CREATE_DICOM_OVERRIDE_TAG: "Trying to override a value inherited from a parent module",
    ErrorCode.CREATE_DICOM_USE_CONTENT: 'Use "Content" to inject an image into a new DICOM instance',
    ErrorCode.CREATE_DICOM_NO_PAYLOAD: "No payload is present for one instance in the series",
    ErrorCode.CREATE_DICOM_USE_DATA_URI_SCHEME: "The payload of the DICOM instance must be specified according to Data URI scheme",
    ErrorCode.CREATE_DICOM_BAD_PARENT: "Trying to attach a new DICOM instance to an inexistent resource",
    ErrorCode.CREATE_DICOM_PARENT_IS_INSTANCE: "Trying to attach a new DICOM instance to an instance (must be a series, study or patient)",
    ErrorCode.CREATE_DICOM_PARENT_ENCODING: "Unable to get the encoding of the parent resource",
    ErrorCode.UNKNOWN_MODALITY: "Unknown modality",
    ErrorCode.CANNOT_ORDER_SLICES: "Unable to order the slices of the series",
    ErrorCode.ALREADY_EXISTING_TAG: "Cannot override the value of a tag that already exists",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
}

_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SUCCESS: 200,
    ErrorCode.PARAMETER_OUT_OF_RANGE: 400,
    ErrorCode.BAD_PARAMETER_TYPE: 400,
    ErrorCode.INEXISTENT_ITEM: 404,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.URI_SYNTAX: 400,
    ErrorCode.INEXISTENT_FILE: 404,
    ErrorCode.BAD_FILE_FORMAT: 400,
    ErrorCode.UNKNOWN_RESOURCE: 404,
    ErrorCode.INEXISTENT_TAG: 404,
    ErrorCode.BAD_JSON: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.BAD_RANGE: 416,
    ErrorCode.DATABASE_CANNOT_SERIALIZE: 503,
    ErrorCode.REVISION: 409,
    ErrorCode.CREATE_DICOM_NOT_STRING: 400,
    ErrorCode.CREATE_DICOM_OVERRIDE_TAG: 400,
    ErrorCode.CREATE_DICOM_USE_CONTENT: 400,
    ErrorCode.CREATE_DICOM_NO_PAYLOAD: 400,
    ErrorCode.CREATE_DICOM_USE_DATA_URI_SCHEME: 400,
    ErrorCode.CREATE_DICOM_BAD_PARENT: 400,
    ErrorCode.CREATE_DICOM_PARENT_IS_INSTANCE: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
}


# A write refused because the disk is full. Orthanc answers its code 14 with a plain 500; the
# same code with WebDAV's "Insufficient Storage" lets a client tell a full disk (retry later,
# elsewhere) from a fault.
HTTP_INSUFFICIENT_STORAGE = 507
STORAGE_FULL = "The storage area is full"


def http_status(code: ErrorCode | int) -> int:
    """HTTP status Orthanc sends for an error code (500 unless listed)."""
    try:
        return _HTTP_STATUS.get(ErrorCode(code), 500)
    except ValueError:
        return 500


def description(code: ErrorCode | int) -> str:
    try:
        return DESCRIPTIONS[ErrorCode(code)]
    except (ValueError, KeyError):
        return DESCRIPTIONS[ErrorCode.INTERNAL_ERROR]


class OrthancError(Exception):
    """An error with an Orthanc code and an optional detail message."""

    def __init__(self, code: ErrorCode, details: str = "", *, status: int | None = None) -> None:
        super().__init__(details or description(code))
        self.code = ErrorCode(code)
        self.details = details
        self._status = status

    @property
    def http_status(self) -> int:
        """The code's status, unless the raiser needs a more precise one (e.g. 413)."""
        return self._status or http_status(self.code)

    def __repr__(self) -> str:
        return f"OrthancError({self.code.name}, {self.details!r})"


def storage_full() -> OrthancError:
    """The error of a write that found no room left on the disk (files or index)."""
    return OrthancError(ErrorCode.CANNOT_WRITE_FILE, STORAGE_FULL, status=HTTP_INSUFFICIENT_STORAGE)


class NoAnswer(Exception):
    """A handler produced no answer: Orthanc sends an empty 404 (400 for POST)."""
