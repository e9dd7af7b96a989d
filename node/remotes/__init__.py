"""The remote nodes we talk to: DICOM modalities and Orthanc peers, declared in the
configuration or through REST, in one live registry that the SCP, the routes and the
transfer jobs all read."""
