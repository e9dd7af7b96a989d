"""Long operations as jobs: the protocol (job), the engine, persistence and submission (jobs.md)."""
