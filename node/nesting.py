"""How deep client data may nest: DICOM sequences and JSON documents, bounded before use.

Everything that walks a dataset or a JSON document recurses once or more per level:
pydicom's reader and writer, ``copy.deepcopy``, the tag renderers, the JSON and XML
encoders. Python stops such a walk with RecursionError at about a thousand frames, and
pydicom's writer then formats a traceback at every level on its way out, which takes
minutes and gigabytes: one deep file or body could take the node down. So depth is
checked where data comes in, by loops that keep their own stack, and anything deeper
than the bounds below is refused before code that recurses sees it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_SEQUENCE_DEPTH = 32
"""Sequences nested in one dataset. Real data stays far below: RT objects and files full of
private tags nest four levels, enhanced multi-frame images three, and structured reports,
the deepest trees modalities write, about ten. At this depth the walk that recurses most
(``deepcopy``, about a dozen frames per level) uses less than half of the interpreter's
recursion limit; pydicom's reader and writer, a few frames per level, far less."""

MAX_JSON_DEPTH = 100
"""Arrays and objects nested in a request body. The deepest body the API needs, a
create-dicom request whose tags hold MAX_SEQUENCE_DEPTH sequences (an object and an
array per level, inside the body's own), stays below it."""

# A JSON string (escapes included), then anything that is not a bracket: what is left
# once both are removed is the bracket structure of the document.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooDeep(json.JSONDecodeError):
    """A document nested deeper than allowed: not decoded, as if it were invalid."""


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON document nest, without parsing it.

    Exact for valid JSON; for invalid JSON the figure does not matter, the parser refuses it.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def load_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing with :class:`JsonTooDeep` a document nested deeper than ``max_depth``.

    Raises what ``json.loads`` raises on invalid input (UnicodeDecodeError, JSONDecodeError).
    """
    text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    if json_depth(text) > max_depth:
        raise JsonTooDeep(f"arrays and objects nested deeper than {max_depth} levels", text, 0)
    return json.loads(text)
