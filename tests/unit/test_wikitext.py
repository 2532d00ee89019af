from redpajama import manifests
from redpajama.filters.wikitext import DEFAULT_CATEGORY_PREFIXES, DEFAULT_MEDIA_PREFIXES, WikitextCleaner

NAMESPACES = manifests.load("wikipedia_namespaces")


def clean(text: str, language: str = "", **options) -> str:
    media = [*DEFAULT_MEDIA_PREFIXES, *NAMESPACES["media"].get(language, ())]
    category = [*DEFAULT_CATEGORY_PREFIXES, *NAMESPACES["category"].get(language, ())]
    return WikitextCleaner(media, category, **options).clean(text)


def test_keeps_link_text_and_drops_templates():
    assert clean("'''Anarchism''' is a [[political philosophy|philosophy]]{{citation needed}}.") == (
        "Anarchism is a philosophy."
    )


def test_drops_file_image_media_links_including_language_aliases():
    text = "A [[File:x.png|thumb|caption]] b [[Image:y.jpg]] c [[Datei:z.png|Bild]] d"
    assert clean(text) == "A  b  c Bild d"  # Datei is not known without the German aliases
    assert clean(text, "de") == "A  b  c  d"


def test_every_wiki_in_the_alias_table_not_only_redpajamas_twenty():
    assert len(NAMESPACES["media"]) > 250 and len(NAMESPACES["category"]) > 250
    assert clean("Một [[Hình:Ảnh.jpg|300px|thumb|Chú thích]] hai [[Thể loại:Việt Nam]]", "vi") == "Một  hai Việt Nam"
    assert clean("Ένα [[Εικόνα:X.jpg|300px|thumb|Λεζάντα]] δύο", "el") == "Ένα  δύο"
    assert clean("[[Tập_tin:A.png]]x", "vi") == "x"


def test_names_from_the_dumps_siteinfo_extend_the_table():
    text = "a [[Newfile:x.png|thumb|cap]] b [[Newcat:Y]]"
    assert clean(text) == "a thumb|cap b Newcat:Y"  # an unknown prefix is an ordinary link
    assert WikitextCleaner(media_names=["Newfile"], category_names=["Newcat"]).clean(text) == "a  b Y"
    # names are escaped and matched with a space or an underscore
    assert WikitextCleaner(media_names=["Fi (le)"]).clean("[[Fi_(le):x]]y") == "y"


def test_keeps_category_text_without_prefix():
    assert clean("Text.\n[[Category:Political philosophies]]") == "Text.\nPolitical philosophies"
    assert clean("[[Kategorie:Bier]]", "de") == "Bier"
    assert clean("[[Category:Empty|]]x") == "x"  # the builder kept an empty sort key empty


def test_drops_ref_and_table_tags_and_magic_words():
    text = 'Fact.<ref name="a">Source {{cite}}</ref> __NOTOC__\n<table><tr><td>cell</td></tr></table>End.'
    assert clean(text) == "Fact. \nEnd."
    assert clean("a<REF>b</REF>c") == "abc"  # the builder compared tag names as written


def test_sections_joined_by_a_blank_line_and_empty_sections_skipped():
    text = "Lead.\n\n== History ==\nOld times.\n\n== Empty ==\n\n== See also ==\n"
    # mwparserfromhell keeps the space before a heading's closing '==', as the builder did.
    assert clean(text) == "Lead.\n\nHistory \nOld times.\n\nEmpty\n\nSee also"
    assert clean("{{Infobox}}\n==A==\nx") == "A\nx"
    assert clean("{{Infobox}}\n==A==\nx", keep_empty_sections=True) == "\n\nA\nx"
