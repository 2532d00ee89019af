"""arXiv from S3 as RedPajama read it: the tars that arXiv_src_manifest.xml lists up to --until,
straight from a requester-pays bucket (``RequestPayer=requester`` on every request), no copy.
S3 is moto's server behind a proxy that refuses requests without the requester-pays header
(``s3_standin``); ordinary buckets go through Beam's own S3 file system."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import SHARED, need
from tests.integration.s3_standin import RequesterPaysS3

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ("2302", "2303", "2304")
TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


def paper(arxiv_id: str) -> bytes:
    tex = (f"\\documentclass{{article}}\\begin{{document}}\n\\section{{Introduction}}\nPaper {arxiv_id} proves "
           "that every bounded monotone sequence of real numbers converges, with a short argument.\n\\end{document}\n")
    return gzip.compress(tex.encode())


def bulk_tar(month: str, papers: int = 2) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for number in range(1, papers + 1):
            data = paper(f"{month}.{number:05d}")
            member = tarfile.TarInfo(f"{month}/{month}.{number:05d}.gz")
            member.size, member.mtime = len(data), 1_680_000_000
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def manifest(sizes: dict[str, int]) -> bytes:
    entries = "".join(f"<file><filename>src/arXiv_src_{m}_001.tar</filename><num_items>2</num_items>"
                      f"<size>{size}</size><yymm>{m}</yymm></file>" for m, size in sizes.items())
    return f"<?xml version='1.0' encoding='UTF-8'?><arXivSRC>{entries}</arXivSRC>".encode()


@pytest.fixture(scope="module")
def s3():
    standin = RequesterPaysS3(requester_pays=("arxiv", "mirror"))
    admin = standin.admin()
    for bucket in ("arxiv", "mirror", "open"):
        admin.create_bucket(Bucket=bucket)
    sizes = {}
    for month in MONTHS:
        data = bulk_tar(month)
        sizes[month] = len(data)
        for bucket in ("arxiv", "mirror", "open"):
            admin.put_object(Bucket=bucket, Key=f"src/arXiv_src_{month}_001.tar", Body=data)
    admin.put_object(Bucket="arxiv", Key="src/arXiv_src_manifest.xml", Body=manifest(sizes))
    yield standin
    standin.close()


def cli(s3: RequesterPaysS3, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **s3.env(), "REDPAJAMA_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "arxiv", "--executor", "inprocess",
                           "--count-tokens", "off", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)


def test_the_stand_in_refuses_a_request_that_does_not_say_the_requester_pays(s3):
    import boto3
    import botocore.exceptions

    client = boto3.session.Session().client("s3", endpoint_url=s3.url, region_name="us-east-1",
                                            aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.get_object(Bucket="arxiv", Key="src/arXiv_src_manifest.xml")
    body = client.get_object(Bucket="arxiv", Key="src/arXiv_src_manifest.xml", RequestPayer="requester")["Body"]
    assert b"arXiv_src_2304_001.tar" in body.read()


def test_arxiv_reads_the_manifests_tars_up_to_a_month_from_the_requester_pays_bucket(s3, tmp_path):
    seen = len(s3.requests)
    done = cli(s3, tmp_path, "--until", "2303", "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "out" / "arxiv" / "stats.json").read_text())
    assert (stats["read"], stats["kept"], stats["failed"]) == (4, 4, 0)  # two papers in each of 2302 and 2303
    source = stats["recipe"]["source_manifest"]
    assert (source["path"], source["until"], source["tars_listed"], source["tars"], source["papers"]) == (
        "s3://arxiv/src/arXiv_src_manifest.xml", "2303", 3, 2, 4)
    ids = sorted(json.loads(line)["meta"]["arxiv_id"] for path in (tmp_path / "out" / "arxiv").glob("arxiv-*.jsonl.zst")
                 for line in _lines(path))
    assert ids == ["2302.00001", "2302.00002", "2303.00001", "2303.00002"]
    mine = s3.requests[seen:]
    assert mine and all(pays for _, _, pays in mine)  # every request said the requester pays
    assert not any("2304" in path for _, path, _ in mine)  # the tar after --until was never touched

    from redpajama.pipelines.commands.report import build_report

    row = build_report(str(tmp_path / "out"), str(need(TOKENIZER)))["slices"][0]
    assert (row["slice"], row["units_processed"], row["units_full_scale"]) == ("arxiv", 2, 2)
    assert row["units_full_scale_source"] == ("counted by the run from s3://arxiv/src/arXiv_src_manifest.xml "
                                              "(2 of 3 tars up to 2303)")
    assert row["projected_tokens"] == row["tokens"]


def test_other_buckets_are_requester_pays_only_when_asked_and_otherwise_go_through_beams_s3(s3, tmp_path):
    refused = cli(s3, tmp_path, "--input", "s3://mirror/src/arXiv_src_2302_001.tar", "--output", str(tmp_path / "a"))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "s3://mirror/src/arXiv_src_2302_001.tar" in refused.stderr
    paid = cli(s3, tmp_path, "--requester-pays", "--input", "s3://mirror/src/*.tar", "--until", "2302",
               "--output", str(tmp_path / "b"))
    assert paid.returncode == 0, paid.stderr
    assert json.loads((tmp_path / "b" / "arxiv" / "stats.json").read_text())["kept"] == 2
    seen = len(s3.requests)
    open_bucket = cli(s3, tmp_path, "--input", "s3://open/src/arXiv_src_2304_001.tar", "--output", str(tmp_path / "c"))
    assert open_bucket.returncode == 0, open_bucket.stderr
    assert json.loads((tmp_path / "c" / "arxiv" / "stats.json").read_text())["kept"] == 2
    assert not any(pays for _, _, pays in s3.requests[seen:])  # Beam's S3 file system, no requester-pays header


def _lines(path: Path) -> list[bytes]:
    import zstandard

    with open(path, "rb") as handle:
        return zstandard.ZstdDecompressor().stream_reader(handle).read().splitlines()
