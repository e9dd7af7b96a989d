"""Index (resources, tags, metadata, changes) and the file store."""
