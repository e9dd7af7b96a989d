"""Transfers to and from remote nodes as jobs: C-STORE and C-MOVE SCU, Orthanc peer stores.

Above the DICOM layer (they open associations as requestor) and below HTTP (routes
submit them); importing a job type's module registers it for reloading.
"""
