from redpajama.filters.wikitext import WikitextCleaner


def clean(text: str, **aliases) -> str:
    return WikitextCleaner(**aliases).clean(text)


def test_keeps_link_text_and_drops_templates():
    assert clean("'''Anarchism''' is a [[political philosophy|philosophy]]{{citation needed}}.") == (
        "Anarchism is a philosophy."
    )


def test_drops_file_image_media_links_including_language_aliases():
    text = "A [[File:x.png|thumb|caption]] b [[Image:y.jpg]] c [[Datei:z.png|Bild]] d"
    assert clean(text) == "A  b  c Bild d"  # Datei is not known without the German aliases
    assert clean(text, media_prefixes=["Datei"]) == "A  b  c  d"


def test_keeps_category_text_without_prefix():
    assert clean("Text.\n[[Category:Political philosophies]]") == "Text.\nPolitical philosophies"
    assert clean("[[Kategorie:Bier]]", category_prefixes=["Kategorie"]) == "Bier"


def test_drops_ref_and_table_tags_and_magic_words():
    text = 'Fact.<ref name="a">Source {{cite}}</ref> __NOTOC__\n<table><tr><td>cell</td></tr></table>End.'
    assert clean(text) == "Fact. \nEnd."


def test_sections_joined_by_a_blank_line_and_empty_sections_skipped():
    text = "Lead.\n\n== History ==\nOld times.\n\n== Empty ==\n\n== See also ==\n"
    # mwparserfromhell keeps the space before a heading's closing '==', as the builder did.
    assert clean(text) == "Lead.\n\nHistory \nOld times.\n\nEmpty\n\nSee also"
    assert clean("{{Infobox}}\n==A==\nx") == "A\nx"
