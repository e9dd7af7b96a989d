"""DICOM networking: the Upper Layer on Trio (:mod:`node.net.ul`) and the SCP built on it."""
