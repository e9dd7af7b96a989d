"""The Orthanc REST API: a quart-trio app served by hypercorn's trio worker."""
