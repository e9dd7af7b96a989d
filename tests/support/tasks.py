"""The Trio tasks alive in the test's run, to check that an operation left none behind."""

from __future__ import annotations

from collections import Counter

import trio


def _walk(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    tasks = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            tasks.extend(_walk(child))
    return tasks


def task_names() -> Counter[str]:
    """How many tasks run each function (by qualified name), in the whole run."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    return Counter(task.name for task in _walk(root))


def tasks_added(before: Counter[str]) -> dict[str, int]:
    """Tasks running now that did not before (by function name)."""
    return dict(task_names() - before)
