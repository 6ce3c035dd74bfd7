"""The settings database: which symbols stream, persisted across restarts."""
