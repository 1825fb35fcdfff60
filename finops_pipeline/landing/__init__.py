"""Landing files: where FOCUS exports arrive, and how they are read and validated."""
