"""A request body is kept in the order it arrived, across the spill from memory to a temporary
file (spool.receive_body): a part that no longer fits in memory waits for its batch to be written,
and every part after it must wait with it."""

from __future__ import annotations

from pathlib import Path

from node.http.asgi import Message
from node.http.spool import MEMORY_LIMIT, receive_body

LIMIT = 64 * MEMORY_LIMIT


def _parts(sizes: list[int]) -> list[bytes]:
    """Parts of distinct content (byte i of the body is i modulo 251), so that a swap shows."""
    body = bytes(i % 251 for i in range(sum(sizes)))
    parts, start = [], 0
    for size in sizes:
        parts.append(body[start : start + size])
        start += size
    return parts


async def test_a_small_part_after_the_first_one_past_memory_keeps_its_place(tmp_path: Path) -> None:
    # Memory nearly full; a part that does not fit (batched for the file); then one that would fit.
    parts = _parts([MEMORY_LIMIT - 1000, 2000, 500])
    messages = [{"type": "http.request", "body": part, "more_body": True} for part in parts]
    messages[-1]["more_body"] = False

    async def receive() -> Message:
        return messages.pop(0)

    body = await receive_body(receive, LIMIT, tmp_path)
    try:
        assert body.read_all() == b"".join(parts)
    finally:
        body.close()
