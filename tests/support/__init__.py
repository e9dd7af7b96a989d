"""What the tests share, one version of each helper (the fixtures are in ``tests/conftest.py``).

- :mod:`.node`: a node started in-process on free ports, a client for it, stopping it mid-test.
- :mod:`.process`: a node in a process of its own, for the tests that kill it.
- :mod:`.rest`: what a REST client does: upload, read back, check Orthanc's error answers.
- :mod:`.datasets`: DICOM files made with pydicom, and the shared scanner files.
- :mod:`.studies`: whole studies uploaded over REST.
- :mod:`.jobs`: waiting for jobs, and holding one at a chosen instance.
- :mod:`.job_types`: job types and a route that exist only for the tests of the engine.
- :mod:`.dcmtk`: DCMTK's command line tools.
- :mod:`.peers`: pynetdicom clients (C-STORE, C-FIND), run in worker threads.
- :mod:`.ul_peer`: a raw Upper Layer peer that writes PDUs byte by byte.
- :mod:`.qr_corpus`: the small archive the query/retrieve tests search.
- :mod:`.orthanc`: the real Orthanc, as a counterpart.
- :mod:`.query_retrieve`: two nodes querying and retrieving from each other; Orthanc told about ours.
- :mod:`.find_remote`: a remote whose C-FIND answers cannot be read.
- :mod:`.storage`: file stores that record or fail their flushes, a small disk to fill.
"""
