"""The built-in job types, one module each; importing this package registers them for reloading."""

from . import archive, rewrite, split_merge

__all__ = ["archive", "rewrite", "split_merge"]
