from redpajama.filters.citations import cited_urls, domain, normalize_url, refs


def test_every_ref_is_read_on_its_own_named_ones_too():
    text = ('A claim.<ref>[http://a.example.org/x A]</ref> Text between [http://not-cited.example.com] '
            'refs.<ref name="b">{{cite web |url=https://b.example.org/y?p=1&amp;q=2 |title=B}}</ref>'
            '<ref name="b"/> and <REF>\\nsee https://c.example.org/z.</REF>')
    assert refs(text)[0] == "[http://a.example.org/x A]"
    assert cited_urls(text) == ["http://a.example.org/x", "https://b.example.org/y?p=1&q=2", "https://c.example.org/z"]


def test_urls_are_normalised():
    assert normalize_url("HTTP://WWW.Example.ORG:80/Path#frag") == "http://www.example.org/Path"
    assert normalize_url("https://example.org") == "https://example.org/"
    assert normalize_url("https://en.wikipedia.org/wiki/Foo_(bar))") == "https://en.wikipedia.org/wiki/Foo_(bar)"
    assert normalize_url("https://example.org/page.") == "https://example.org/page"
    assert normalize_url("https://example.org:8443/a") == "https://example.org:8443/a"
    assert normalize_url("http://localhost/x") is None and normalize_url("javascript:alert(1)") is None
    assert normalize_url("http://[bad") is None


def test_a_page_cited_twice_counts_once_and_domains_drop_www():
    text = "<ref>http://www.example.org/a</ref><ref>http://WWW.example.org/a#top</ref>"
    assert cited_urls(text) == ["http://www.example.org/a"]
    assert domain("http://www.example.org/a") == "example.org"
