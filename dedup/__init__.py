"""Deduplication keys and transforms shared by the slices."""
