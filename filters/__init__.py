"""Pure-Python steps (annotate, transform, filter) with no Beam import."""
