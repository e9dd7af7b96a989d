"""JSON answers rendered as XML for clients that send `Accept: application/xml`.

The layout is Orthanc 1.10.1's, checked against its output: a `<root>` element,
object members as elements named after their keys, sorted like JSON keys in Orthanc;
array items as `<item>`; null as the text `null`; empty objects and arrays as
`<name />`; two-space indentation.

One deliberate difference: Orthanc writes every key verbatim as an element name, so
that tag keys (`0010,0010`), metadata numbers and any key a client chose (a job's
UserData) can yield a document no parser accepts, or markup the client injected. Here
a key that is not a valid element name becomes `<member name="key">`, the key escaped
in the attribute, and characters XML cannot carry (most control characters, lone
surrogates) become U+FFFD, so every answer is well-formed.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

_INDENT = "  "
RENAMED_MEMBER = "member"  # the element of a key that is not a valid element name

# XML 1.0 names without colons (a colon would make the name a namespace prefix).
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME = re.compile(f"[{_NAME_START}][{_NAME_START}\\-.0-9\u00b7\u0300-\u036f\u203f\u2040]*")
# What XML 1.0 documents cannot contain, even as a character reference.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REPLACEMENT = "\ufffd"


def _clean(text: str) -> str:
    return _NOT_XML_CHAR.sub(_REPLACEMENT, text)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    # A carriage return would be read back as a line feed: written as a reference, it stays.
    return escape(_clean(str(value)), {"\r": "&#13;"})


def _tags(key: str) -> tuple[str, str]:
    """The start and end tags of a member."""
    if _NAME.fullmatch(key):
        return key, key
    return f"{RENAMED_MEMBER} name={quoteattr(_clean(key))}", RENAMED_MEMBER


def _element(key: str, value: Any, depth: int, out: list[str]) -> None:
    pad = _INDENT * depth
    start, end = _tags(key)
    if isinstance(value, dict):
        children = [(str(name), value[name]) for name in sorted(value)]
    elif isinstance(value, list):
        children = [("item", item) for item in value]
    else:
        out.append(f"{pad}<{start}>{_text(value)}</{end}>\n")
        return
    if not children:
        out.append(f"{pad}<{start} />\n")
        return
    out.append(f"{pad}<{start}>\n")
    for name, child in children:
        _element(name, child, depth + 1, out)
    out.append(f"{pad}</{end}>\n")


def to_xml(value: Any) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _element("root", value, 0, out)
    return "".join(out)
