"""An Orthanc-compatible DICOM node on Trio."""

__version__ = "0.1.0"
PRODUCT_NAME = "trio-dicom-node"
# The Orthanc this node behaves like: reported by /system and written by anonymization.
ORTHANC_VERSION = "1.10.1"
ORTHANC_API_VERSION = 16
