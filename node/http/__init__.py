"""The Orthanc REST API: a quart-trio app, served over HTTP/1.1 by :mod:`.http1`."""
