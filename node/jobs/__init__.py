"""Long operations as jobs: the protocol (job), the engine, persistence and submission.

The model is Orthanc's: https://book.orthanc-server.com/users/advanced-rest.html#jobs
"""
