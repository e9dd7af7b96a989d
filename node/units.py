"""The units of the settings: durations in seconds (floats, as Trio takes them), sizes in bytes.

Orthanc's options give timeouts in seconds and some sizes in megabytes; each subsystem's
settings convert them once, at start, so that no code past them multiplies by a unit.
"""

from __future__ import annotations

SECOND = 1.0
MEGABYTE = 1024 * 1024
