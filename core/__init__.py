"""The bottom layer: records and steps, errors, where inputs live and how their bytes become records."""
