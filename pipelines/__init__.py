"""Beam plumbing shared by every slice: CLI, runner options, the generic DAG, sinks, stats."""
