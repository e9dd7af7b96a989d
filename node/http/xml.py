"""JSON answers rendered as XML for clients that send Accept: application/xml."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape


def _element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, item in value.items():
            _element(_safe_name(key), item, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        out.append(f"<{name}>")
        for item in value:
            _element("item", item, out)
        out.append(f"</{name}>")
    elif value is None:
        out.append(f"<{name} />")
    else:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append(f"<{name}>{escape(text)}</{name}>")


def _safe_name(key: str) -> str:
    """XML names cannot start with a digit or hold a comma (tag keys `0010,0010`)."""
    name = key.replace(",", "-")
    return name if name[:1].isalpha() or name[:1] == "_" else f"tag-{name}"


def to_xml(value: Any) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>']
    _element("root", value, out)
    return "".join(out)
