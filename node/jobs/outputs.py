"""The outputs of finished jobs (archives), at most MediaArchiveSize of them, least recently used evicted."""

from __future__ import annotations

from collections import OrderedDict

from .job import JobOutput


class OutputStore:
    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._outputs: OrderedDict[str, JobOutput] = OrderedDict()

    def put(self, job_id: str, output: JobOutput) -> list[JobOutput]:
        """Store an output; returns the evicted ones, for the caller to discard."""
        evicted = [self._outputs.pop(job_id)] if job_id in self._outputs else []
        self._outputs[job_id] = output
        while len(self._outputs) > self._capacity:
            evicted.append(self._outputs.popitem(last=False)[1])
        return evicted

    def get(self, job_id: str) -> JobOutput | None:
        """Reading an output makes it the most recently used."""
        output = self._outputs.get(job_id)
        if output is not None:
            self._outputs.move_to_end(job_id)
        return output

    def pop(self, job_id: str) -> JobOutput | None:
        return self._outputs.pop(job_id, None)
