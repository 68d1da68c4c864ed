"""Readers and writers at the I/O edge: coordinates become 0-based half-open here, once."""
