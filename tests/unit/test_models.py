"""Model locations chosen on the launcher must hold on a worker: packaged and cached copies are symbolic."""

import json

import pytest
from redpajama.models import catalog


def test_packaged_and_cached_models_are_named_symbolically(tmp_path, monkeypatch):
    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path))
    spec = catalog.ModelSpec("m", "a test model", "https://example.org/m.bin", "m.bin", ("json", "__init__.py"))
    location = catalog.locate(spec)
    assert location == "package:json/__init__.py"
    assert catalog.fetch(location, "x") == json.__file__
    cached = catalog.ModelSpec("c", "a cached model", "https://example.org/c.bin", "c.bin")
    assert catalog.locate(cached) == cached.url  # not in the cache yet: the published URL
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "c.bin").write_bytes(b"model")
    assert catalog.locate(cached) == "cache:c.bin"
    assert catalog.fetch("cache:c.bin", "c.bin") == str(tmp_path / "models" / "c.bin")
    with pytest.raises(catalog.ModelNotFound):
        catalog.fetch("cache:missing.bin", "missing.bin")


def test_built_models_in_the_default_folder_resolve_against_each_machines_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path))
    built = catalog.built_folder()
    built.mkdir(parents=True)
    (built / "en.sp.model").write_bytes(b"sp")
    (built / catalog.BUILT_MANIFEST).write_text(json.dumps({"language": "en", "files": {"sp": {"file": "en.sp.model"}}}))
    assert catalog.built_models()["sp"] == "cache:built/en.sp.model"
    assert catalog.local_file("cache:built/en.sp.model") == built / "en.sp.model"
    assert catalog.built_models(str(built))["sp"] == str(built / "en.sp.model")  # an explicit folder keeps paths
    assert catalog.built_models()["wikiref_recipe"] == catalog.WIKIREF_RECIPES["articles"]  # an older manifest


def test_a_web_page_instead_of_a_model_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    from tests.integration.loopback import Reply, Server

    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path))
    server = Server("127.0.0.1", lambda path, query, headers: Reply(
        body=b"<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses.</body></html>"))
    try:
        with pytest.raises(catalog.ModelNotFound, match="answered with a web page"):
            catalog.fetch(f"{server.base}/download?id=x", "model.bin")
    finally:
        server.close()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_models_build_reads_the_web_sample_whatever_an_earlier_build_left_in_the_cache(tmp_path, monkeypatch):
    """A cache whose models.json names files that are gone (deleted to rebuild them) must not stop the
    build: the recipe's steps after language ID never run in it."""
    from redpajama.pipelines.commands.models_build import BuildSettings, web_documents

    from tests.conftest import CC_WET, LID_MODEL, need

    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path))
    built = catalog.built_folder()
    built.mkdir(parents=True)
    files = {name: {"file": f"en.{name}"} for name in ("sp", "lm", "cutoffs", "wikiref")}
    (built / catalog.BUILT_MANIFEST).write_text(json.dumps({"language": "en", "files": files}))
    wet = [str(need(CC_WET[0]))]
    texts, info = web_documents(wet, BuildSettings(wikipedia=[], commoncrawl=wet, output=built, lid_model=str(need(LID_MODEL))))
    assert texts and info["kept"] == len(texts) < info["after_line_dedup"] <= info["parsed"] < info["documents"]
