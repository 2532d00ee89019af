"""One module per slice: its source reader and its recipe (ordered steps and parameters)."""
