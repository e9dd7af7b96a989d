"""DICOM and HTTP I/O with remote peers; the only place that bridges Trio and threads."""
