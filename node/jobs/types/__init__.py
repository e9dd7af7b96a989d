"""The built-in job types, one module each; importing this package registers them for reloading."""

from . import archive, modification, split_merge

__all__ = ["archive", "modification", "split_merge"]
