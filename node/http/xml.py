"""JSON answers rendered as XML for clients that send `Accept: application/xml`.

The layout is Orthanc 1.10.1's, checked against its output: a `<root>` element,
object members as elements named after their keys (verbatim, even `0010,0010`,
which strict XML parsers refuse), sorted like JSON keys in Orthanc; array items as
`<item>`; null as the text `null`; empty objects and arrays as `<name />`;
two-space indentation.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

_INDENT = "  "


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _element(name: str, value: Any, depth: int, out: list[str]) -> None:
    pad = _INDENT * depth
    if isinstance(value, dict):
        children = [(key, value[key]) for key in sorted(value)]
    elif isinstance(value, list):
        children = [("item", item) for item in value]
    else:
        out.append(f"{pad}<{name}>{_text(value)}</{name}>\n")
        return
    if not children:
        out.append(f"{pad}<{name} />\n")
        return
    out.append(f"{pad}<{name}>\n")
    for key, child in children:
        _element(str(key), child, depth + 1, out)
    out.append(f"{pad}</{name}>\n")


def to_xml(value: Any) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _element("root", value, 0, out)
    return "".join(out)
