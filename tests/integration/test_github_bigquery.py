"""GitHub from the public dataset as RedPajama queried it (``run github --bigquery``): the query in
manifests/github_bigquery.sql runs once into a result table, which Beam's own BigQuery source
reads through the Storage Read API, then the slice's usual steps. BigQuery is bqemulator
holding tables shaped like bigquery-public-data.github_repos (``bigquery_standin``); Google's
token service is the local stand-in of the launch tests."""

from __future__ import annotations

import json

import pytest
from redpajama.pipelines.commands.cli import main

from tests.conftest import SHARED, need
from tests.integration.bigquery_standin import PUBLIC, BigQueryEmulator
from tests.integration.google_standins import FakeGoogle, service_account_file

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
CODE = ("import os\nimport sys\n\n\ndef main(arguments):\n    \"\"\"Print each argument with its length.\"\"\"\n"
        "    for argument in arguments:\n        print(argument, len(argument))\n    return 0\n\n\n"
        "if __name__ == \"__main__\":\n    sys.exit(main(sys.argv[1:]))\n")
SCRIPT = "function greet(name) {\n  const message = 'Hello, ' + name;\n  console.log(message);\n  return message;\n}\n"
MIT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software.\n"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    bq = BigQueryEmulator(tmp_path_factory.mktemp("bqemulator-home"))
    contents = [
        {"id": "blob-code", "size": len(CODE), "content": CODE, "binary": False, "copies": 2},
        {"id": "blob-script", "size": len(SCRIPT), "content": SCRIPT, "binary": False, "copies": 1},
        {"id": "blob-license", "size": len(MIT), "content": MIT, "binary": False, "copies": 1},
        {"id": "blob-image", "size": 2048, "content": None, "binary": True, "copies": 1},
    ]
    files = [
        {"repo_name": "alice/tool", "ref": "refs/heads/master", "path": "tool/main.py", "mode": 33188, "id": "blob-code"},
        {"repo_name": "alice/tool", "ref": "refs/heads/master", "path": "LICENSE", "mode": 33188, "id": "blob-license"},
        {"repo_name": "alice/tool", "ref": "refs/heads/master", "path": "logo.png", "mode": 33188, "id": "blob-image"},
        {"repo_name": "carol/fork", "ref": "refs/heads/main", "path": "src/main.py", "mode": 33188, "id": "blob-code"},
        {"repo_name": "carol/fork", "ref": "refs/heads/main", "path": "web/greet.js", "mode": 33188, "id": "blob-script"},
        {"repo_name": "bob/gpl", "ref": "refs/heads/master", "path": "gpl.js", "mode": 33188, "id": "blob-script"},
        {"repo_name": "dave/nolang", "ref": "refs/heads/master", "path": "x.py", "mode": 33188, "id": "blob-code"},
    ]
    licenses = [{"repo_name": "alice/tool", "license": "mit"}, {"repo_name": "carol/fork", "license": "apache-2.0"},
                {"repo_name": "bob/gpl", "license": "gpl-3.0"}, {"repo_name": "dave/nolang", "license": "bsd-3-clause"}]
    languages = [{"repo_name": name, "language": [{"name": "Python", "bytes": 300}, {"name": "JavaScript", "bytes": 90}]}
                 for name in ("alice/tool", "carol/fork", "bob/gpl")]  # dave/nolang has none: RedPajama's inner join drops it
    bq.public_github(contents, files, licenses, languages)
    yield bq
    bq.close()


@pytest.fixture
def google(emulator, tmp_path, monkeypatch):
    """Credentials from a key file whose tokens come from the local stand-in; Google's BigQuery
    clients on the emulator; Beam's Storage Read client on its gRPC port."""
    from apache_beam.internal.gcp import auth
    from apache_beam.io.gcp import bigquery_tools

    with FakeGoogle() as fake:
        for name in [name for name in list(__import__("os").environ) if name.startswith(("GOOGLE_", "CLOUDSDK_"))]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, f"{fake.url}/token")))
        monkeypatch.setenv("NO_GCE_CHECK", "True")
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{emulator.rest}")
        monkeypatch.setattr(bigquery_tools, "create_bq_storage_client", emulator.storage_client)
        monkeypatch.setattr(auth._Credentials, "_credentials_init", False)
        yield fake


def run_github(tmp_path, emulator, *extra):
    return main(["run", "github", "--bigquery", "--bigquery-project", "billing", "--output", str(tmp_path / "out"),
                 "--workers", "1", "--count-tokens", "off", "--tokenizer", str(need(TOKENIZER)), *extra,
                 "--", f"--bigquery_endpoint=http://{emulator.rest}"])


def test_github_reads_the_public_dataset_with_redpajamas_query_through_the_storage_read_api(
        emulator, google, tmp_path, capsys):
    assert run_github(tmp_path, emulator) == 0
    err = capsys.readouterr().err
    assert "bigquery: the query scans" in err and "holds 4 rows" in err
    stats = json.loads((tmp_path / "out" / "github" / "stats.json").read_text())
    # the query's rows: alice's main.py, LICENSE and carol's main.py + greet.js (logo.png has no content,
    # bob's licence is GPL, dave's repository has no languages row); then RedPajama's steps
    assert (stats["read"], stats["kept"], stats["failed"]) == (4, 2, 0)
    assert stats["dropped"] == {"skipped_path": 1, "duplicate_content": 1}
    table = stats["recipe"]["bigquery"]
    assert table["table"].startswith("billing.redpajama.github_") and table["rows"] == 4 and not table["reused"]
    records = _records(tmp_path / "out" / "github")
    assert sorted(r["meta"]["id"] for r in records) == ["github/alice/tool/refs/heads/master/tool/main.py",
                                                          "github/carol/fork/refs/heads/main/web/greet.js"]
    script = next(r for r in records if r["meta"]["path"] == "web/greet.js")
    assert script["text"] == SCRIPT and script["meta"]["license"] == "apache-2.0"
    assert script["meta"]["blob_id"] == "blob-script" and script["meta"]["mode"] == 33188
    assert [language["name"] for language in script["meta"]["language"]] == ["Python", "JavaScript"]

    from redpajama.pipelines.commands.report import build_report

    row = build_report(str(tmp_path / "out"), str(TOKENIZER))["slices"][0]
    assert (row["slice"], row["unit"], row["units_processed"], row["units_full_scale"]) == ("github", "BigQuery rows", 4, 4)
    assert row["projected_tokens"] == row["tokens"] and "result table billing.redpajama.github_" in row["units_full_scale_source"]

    assert run_github(tmp_path, emulator) == 0  # the same command again: the result table is found, nothing to do
    again = capsys.readouterr()
    assert "made by an earlier run" in again.err and "the query scans" not in again.err
    assert "already complete" in again.out


def test_bigquery_mistakes_are_one_line(emulator, google, tmp_path, capsys):
    assert main(["run", "github", "--bigquery", "--output", str(tmp_path / "o"), "--count-tokens", "off"]) == 2
    assert "--bigquery needs --bigquery-project (or --project)" in capsys.readouterr().err
    code = main(["run", "github", "--bigquery", "--project", "p", "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    assert code == 2 and "--input and --limit do not apply" in capsys.readouterr().err
    assert main(["run", "github", "--output", str(tmp_path / "o")]) == 2
    assert "github needs --bigquery (the public dataset) or --input" in capsys.readouterr().err


def test_the_public_tables_stand_in_has_the_public_schema(emulator):
    tables = {name: [field.name for field in emulator.client().get_table(f"{PUBLIC}.{name}").schema]
              for name in ("contents", "files", "licenses", "languages")}
    assert tables == {"contents": ["id", "size", "content", "binary", "copies"],
                      "files": ["repo_name", "ref", "path", "mode", "id", "symlink_target"],
                      "licenses": ["repo_name", "license"], "languages": ["repo_name", "language"]}


def _records(folder):
    import zstandard

    found = []
    for path in sorted(folder.glob("github-*.jsonl.zst")):
        with open(path, "rb") as handle:
            found += [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(handle).read().splitlines()]
    return found
