"""Running slices: the run of a slice whatever executes it (``runs``), the Beam executor
(``beam``, the only package that imports Beam), fetching cited pages (``fetch``) and the
``redpajama`` command (``commands``)."""
