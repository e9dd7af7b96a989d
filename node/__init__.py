"""An Orthanc-compatible DICOM node on Trio."""

__version__ = "0.1.0"
PRODUCT_NAME = "trio-dicom-node"
