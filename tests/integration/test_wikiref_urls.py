from pathlib import Path

from redpajama.slices.wikiref_urls import WikirefUrls

from tests.conftest import WIKI, need
from tests.integration.helpers import output_bytes, run

EN = WIKI / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def lines(folder: Path, prefix: str) -> list[str]:
    return [line for path in sorted(folder.glob(f"{prefix}-*.txt")) for line in path.read_text().splitlines()]


def test_cited_urls_of_articles_distinct_counted_and_sampled(tmp_path):
    outcome = run(WikirefUrls(sample=200, seed=1), [need(EN)], tmp_path / "a", workers=2)
    stats, folder = outcome.stats, Path(outcome.slice_dir)
    urls = lines(folder, "urls")
    assert (stats["read"], stats["kept"], stats["dropped"]) == (4211, 4189, {"duplicate_url": 22})
    assert len(urls) == len(set(urls)) == 4189
    assert all(url.startswith(("http://", "https://", "ftp://")) for url in urls)
    # &amp; in the dump is an '&' of the URL: the query string is kept whole.
    assert not any("&amp;" in url for url in urls) and sum("&" in url for url in urls) > 300
    assert stats["counts"]["language"] == {"distinct": 1, "total": 4189, "all": {"en": 4189}}
    domains = dict(line.split("\t") for line in lines(folder, "domain-counts"))
    assert sum(map(int, domains.values())) == 4189 and stats["counts"]["domain"]["distinct"] == len(domains)
    assert list(stats["counts"]["domain"]["top_100"])[0] == "web.archive.org"

    sample = lines(folder, "sample")
    assert len(sample) == len(set(sample)) == 200 and set(sample) <= set(urls)
    again = run(WikirefUrls(sample=200, seed=1), [EN], tmp_path / "b", workers=1)
    assert output_bytes(again.slice_dir) == output_bytes(folder)
    other = run(WikirefUrls(sample=200, seed=2), [EN], tmp_path / "c", workers=1)
    assert len(set(lines(Path(other.slice_dir), "sample")) & set(sample)) < 50  # ~200²/4189 ≈ 10 expected
