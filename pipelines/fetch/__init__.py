"""Fetching the pages Wikipedia cites into WARC files (``redpajama fetch-pages``): politely, resumably,
from live sites or a CommonCrawl crawl. Nothing here uses Beam."""
