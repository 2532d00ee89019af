"""GitHub rules: copyright stripping, line statistics and the quality filter."""

import pytest
from redpajama.core.records import Drop
from redpajama.filters.code import CodeQuality, alpha_per_token, line_stats, skipped_path, strip_copyright
from redpajama.filters.license import bigquery_allowed

from tests.conftest import SHARED, need

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


def test_block_comment_with_copyright_is_cut_and_others_stay():
    code = "/* Copyright 2020 ACME */\nint x;\n/* copyright later */\n"
    assert strip_copyright(code) == "\nint x;\n/* copyright later */\n"
    plain = "/* just a note */\n// Copyright 2020\nint y;\n"
    assert strip_copyright(plain) == plain  # a block comment was found: nothing else is touched, as RedPajama


def test_leading_line_comments_go_only_when_they_are_a_copyright_notice():
    notice = "# Copyright (c) 2021 Someone\n# SPDX: MIT\n\nimport os\n"
    assert strip_copyright(notice) == "import os\n"
    script = "#!/usr/bin/env python\n# a helper script\nprint(1)\n"
    assert strip_copyright(script) == script  # RedPajama removed these two lines too


def test_line_statistics_as_redpajama():
    stats = line_stats("ab\ncd e\n")
    assert stats == {"line_count": 2, "max_line_length": 4, "avg_line_length": 4.0, "alnum_prop": 5 / 8}
    assert line_stats("") == {"line_count": 0, "max_line_length": 0, "avg_line_length": 0, "alnum_prop": 0}


def test_skipped_paths():
    assert skipped_path("certs/ca.crt") and skipped_path("LICENSE")
    assert not skipped_path("docs/LICENSE") and not skipped_path("LICENSE.md")


def _record(path, text):
    return {"text": text, "meta": {"path": path, **line_stats(text)}}


@pytest.fixture(scope="module")
def quality():
    step = CodeQuality(str(need(TOKENIZER)))
    step.setup()
    return step


@pytest.mark.parametrize("path,text,reason", [
    ("a.py", "", "empty"),
    ("a.txt", "text = 1\n", "extension_not_allowed"),
    ("a.Py", "text = 1\n", "extension_not_allowed"),  # case-sensitive suffixes, as RedPajama
    ("a.py", "x = '" + "a" * 1001 + "'\n", "max_line_length"),
    ("a.py", ("y = '" + "b" * 150 + "'\n") * 3, "avg_line_length"),
    ("a.py", "{}\n[]\n();\n", "alnum_prop"),
    ("a.py", "0x1f 0x2e 0x3d 0x4c\n" * 4, "alpha_per_token"),
])
def test_each_quality_rule(quality, path, text, reason):
    assert quality.apply(_record(path, text)) == Drop(reason)


def test_good_code_and_extension_edge_cases_pass(quality):
    good = "def greet(name):\n    return f'hello {name}'\n"
    for path in ("src/app.py", "build/Makefile", "docker/Dockerfile", "lib/x.C", "x.h++"):
        assert not isinstance(quality.apply(_record(path, good)), Drop), path
    assert alpha_per_token(good, quality._tokenizer) > 1.5


def test_bigquery_licence_values():
    assert all(bigquery_allowed(v) for v in ("mit", "apache-2.0", "bsd-3-clause", "bsd-2-clause"))
    assert bigquery_allowed("mit-0") and bigquery_allowed("bsd-4-clause")  # LIKE 'mit%', 'bsd%'
    assert not any(bigquery_allowed(v) for v in ("gpl-3.0", "", None, "lgpl-2.1", "0bsd", "other", 7, ["mit"]))
