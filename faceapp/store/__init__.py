"""Persistence: SQLite through sqlite-utils, schema versioned with migrations."""
