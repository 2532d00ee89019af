"""Readers of the formats the sources come in: MediaWiki XML dumps, WARC/WET archives, 7z and tar archives. No Beam."""
