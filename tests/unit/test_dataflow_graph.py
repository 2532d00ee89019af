"""Every slice's pipeline built with Dataflow options, not submitted: it serialises, its DoFns
pickle and unpickle, and the job graph stays far below Dataflow's 10 MB limit, also with a
90,000-file snapshot given file by file."""

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from redpajama.pipelines.beam.build import build
from redpajama.pipelines.beam.options import pipeline_options
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.registry import registry

DATAFLOW_LIMIT = 10 << 20
CONFIG = RunnerConfig(runner="dataflow", project="p", region="us-central1", temp_location="gs://bucket/tmp",
                      setup_file="./setup.py", workers=100)
INPUTS = {  # slices without default sources get a typical input
    "github": ["gs://bucket/github/github_000000000000.jsonl.gz"],
    "arxiv": ["gs://bucket/arxiv/arXiv_src_2303_001.tar"],
    "books": ["gs://bucket/pg19/train/*.jsonl"],
}
OPTIONS = {"commoncrawl": {"lid_model": "gs://bucket/models/lid.176.bin", "sp_model": "gs://bucket/models/en.sp.model",
                           "lm_model": "gs://bucket/models/en.arpa.bin", "cutoffs": "ccnet",
                           "wikiref_model": "gs://bucket/models/wikiref.bin", "near_dedup": True},
           "c4": {"commoncrawl_output": "gs://bucket/out/common_crawl"},
           "stackexchange": {"lid_model": "gs://bucket/models/lid.176.bin", "sites": "beer.stackexchange.com"}}


def graph(slice_name, inputs, tmp_path, slc=None):
    slc = slc or registry()[slice_name](**OPTIONS.get(slice_name, {}))
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=pipeline_options(CONFIG))
    build(pipeline, slc, inputs, Layout(str(tmp_path / slice_name)))
    proto = pipeline.to_runner_api()  # pickles every DoFn, with its slice and steps
    beam.Pipeline.from_runner_api(proto, FnApiRunner(), pipeline_options(CONFIG))  # and they unpickle
    return len(proto.SerializeToString())


@pytest.mark.parametrize("slice_name", sorted(registry()))
def test_each_slice_builds_a_small_serialisable_dataflow_graph(slice_name, tmp_path):
    slc = registry()[slice_name](**OPTIONS.get(slice_name, {}))
    inputs = INPUTS.get(slice_name) or slc.default_inputs()
    assert graph(slice_name, inputs, tmp_path) < 1 << 20


def test_commoncrawl_dedup_shuffles_carry_keys_not_records(tmp_path):
    """Line dedup reads files twice around a shuffle of key arrays; digest dedup groups pairs."""
    slc = registry()["commoncrawl"](**{**OPTIONS["commoncrawl"], "near_dedup": False})
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=pipeline_options(CONFIG))
    build(pipeline, slc, slc.default_inputs(), Layout(str(tmp_path / "cc")))
    proto = pipeline.to_runner_api()
    beam.Pipeline.from_runner_api(proto, FnApiRunner(), pipeline_options(CONFIG))
    labels = {transform.unique_name for transform in proto.components.transforms.values()}
    assert {"ReadTwice_line_dedup/ByGroup", "ReadTwice_line_dedup/ByUnit", "KeepFirst_digest_dedup/ByKey"} <= labels
    assert not any(label.startswith(("Join", "Shuffle", "Unbatch")) for label in labels)


def test_a_full_snapshot_listed_file_by_file_stays_under_the_limit(tmp_path):
    wet = [f"https://data.commoncrawl.org/crawl-data/CC-MAIN-2023-06/segments/1674764494826.{i // 900:03d}/wet/"
           f"CC-MAIN-20230126210844-20230127000844-{i:05d}.warc.wet.gz" for i in range(90_000)]
    size = graph("commoncrawl", wet, tmp_path)
    assert size < DATAFLOW_LIMIT // 10  # the list goes to a file the workers read, not into the graph
    assert (tmp_path / "commoncrawl" / "_temporary" / "_inputs.txt").read_text().count("\n") == 90_000


def test_github_from_bigquery_and_arxiv_from_requester_pays_s3_build_small_graphs(tmp_path):
    """The sources RedPajama read: the public dataset's query result (Beam's BigQuery source, Storage
    Read API) and arXiv's requester-pays bucket, all of its tars given one by one."""
    from apache_beam.io.gcp.bigquery import ReadFromBigQuery
    from redpajama.core.tables import TableSource
    from redpajama.slices.base import RunContext

    table = TableSource("my-project.redpajama.github_0123456789ab", 1_000_000, 2 << 40, reused=False)
    github = registry()["github"](bigquery=True, bigquery_project="my-project", tokenizer="gs://bucket/models/tokenizer.json",
                                  context=RunContext(table=table))
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=pipeline_options(CONFIG))
    build(pipeline, github, [], Layout(str(tmp_path / "github")))
    reads = [node.transform for node in _all_nodes(pipeline) if isinstance(node.transform, ReadFromBigQuery)]
    assert [(r.method, r._kwargs.get("table")) for r in reads] == [
        (ReadFromBigQuery.Method.DIRECT_READ, "my-project.redpajama.github_0123456789ab")]  # no export, no bucket
    assert graph("github", [], tmp_path, github) < 1 << 20

    arxiv = registry()["arxiv"](until="2303", lid_model="gs://bucket/models/lid.176.bin",
                                context=RunContext(requester_pays=True))
    tars = [f"s3://arxiv/src/arXiv_src_{yy:02d}{mm:02d}_{n:03d}.tar" for yy in range(7, 24) for mm in range(1, 13)
            for n in range(1, 30)]
    assert graph("arxiv", tars, tmp_path, arxiv) < 1 << 20


def _all_nodes(pipeline):
    stack = [pipeline.transforms_stack[0]]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.parts)
