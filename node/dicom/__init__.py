"""Pure functions on pydicom datasets and bytes: no Trio, no I/O."""
