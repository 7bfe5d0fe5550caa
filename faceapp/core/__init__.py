"""Pure logic: numpy and plain Python only, no Qt, no models, no I/O libraries."""
