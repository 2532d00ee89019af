"""A run of one slice, whatever executes it: inputs, the output folder and its lock, resuming,
the sink's file format, accounting and stats.json, committing; the supervised engine process."""
