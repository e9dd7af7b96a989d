"""Paths into sequences as request bodies name them: `Seq[0].Other[*].Tag`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

from ..errors import ErrorCode, OrthancError
from .tags import parse_tag


@dataclass(frozen=True)
class TagPath:
    """`Seq[i].Seq[*].Tag`: the sequences to walk (index None = every item), then the tag."""

    text: str
    tag: int
    parents: tuple[tuple[int, int | None], ...] = ()

    @property
    def top_level(self) -> bool:
        return not self.parents

    def items(self, dataset: Dataset) -> Iterator[Dataset]:
        """The datasets where the final tag lives (none when a sequence or item is missing)."""
        current = [dataset]
        for seq_tag, index in self.parents:
            found: list[Dataset] = []
            for item in current:
                element = item.get(seq_tag)
                if element is None or element.VR != "SQ":
                    continue
                values = list(element.value)
                if index is None:
                    found += values
                elif index < len(values):
                    found.append(values[index])
            current = found
        yield from current


def parse_path(text: str) -> TagPath:
    """A tag name or hex, possibly behind `Seq[index]` steps; errors as Orthanc gives them."""
    *steps, last = text.split(".")
    parents: list[tuple[int, int | None]] = []
    for step in steps:
        name, bracket, rest = step.partition("[")
        if not bracket or not rest.endswith("]"):
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "Parent path doesn't contain an index")
        index = rest[:-1]
        if index != "*" and not index.isdigit():
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Not a valid index in parent path: [{index}]")
        parents.append((int(parse_tag(name)), None if index == "*" else int(index)))
    return TagPath(text, int(parse_tag(last)), tuple(parents))
