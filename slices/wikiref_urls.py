"""Wikipedia-cited URLs: step 1 of RedPajama's Wikipedia-reference classifier (recipe §1, step C).

The same dump reader as the Wikipedia slice; every URL cited inside a ``<ref>`` of an article
page (namespace 0, no redirect) of the ``--language`` wiki (default ``en``, RedPajama's)
becomes a record, distinct URLs are kept (the first citation by (language, page, position)),
and the output is plain text, one URL per line, with counts per language and per domain.
``--sample N --seed S`` also writes a seeded uniform sample of N URLs, the list
``redpajama fetch-pages`` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from redpajama.core.errors import UsageError
from redpajama.core.records import Failure, Record, make_record
from redpajama.dedup import exact
from redpajama.filters.citations import cited_urls, domain
from redpajama.slices.base import Keyed, WorkUnit
from redpajama.slices.options import option
from redpajama.slices.wikipedia import ARTICLE_NAMESPACE, DumpOptions, Wikipedia, check_dump_date, dump_date_help, dump_urls

DUMP_DATE = "20230401"  # RedPajama took the refs of enwiki-20230401


@dataclass(frozen=True)
class WikirefUrlsOptions(DumpOptions):
    dump_date: str | None = option(None, dump_date_help(DUMP_DATE))
    language: str = option("en", "the wiki whose articles' citations are taken (RedPajama: en)")
    sample: int | None = option(None, "also write a seeded uniform sample of N URLs", metavar="N")
    seed: int = option(0, "seed of --sample")


class WikirefUrls(Wikipedia):
    name = "wikiref-urls"
    summary = "URLs cited in Wikipedia articles' <ref> tags (positives of the Wikipedia-reference classifier)"
    shard_name = "urls"
    output_format: ClassVar[str] = "lines"
    Options = WikirefUrlsOptions
    options: WikirefUrlsOptions

    @classmethod
    def describe_sources(cls) -> str:
        return ("MediaWiki pages-articles dumps, as the Wikipedia slice reads them (default: the --language "
                f"dump of {DUMP_DATE}; RedPajama: enwiki-{DUMP_DATE}).")

    def default_inputs(self) -> list[str]:
        return dump_urls([self.language], self.options.dump_date or DUMP_DATE, self.options.mirror)

    @property
    def language(self) -> str:
        return self.options.language

    def validate(self) -> None:
        check_dump_date(self.options.dump_date)
        sample = self.options.sample
        if sample is not None and sample < 1:
            raise UsageError(f"--sample takes a number of URLs >= 1, got {sample}")

    def steps(self) -> list:
        return [exact.keep_first_step(
            "distinct_urls", key=lambda record: record["text"], reason="duplicate_url",
            description="distinct_urls: one record per normalised URL, the first citation by (language, page, position)",
        )]

    def counts(self) -> dict[str, Callable[[Record], str]]:
        return {"language": lambda record: record["meta"]["language"],
                "domain": lambda record: record["meta"]["domain"]}

    def sample_spec(self) -> tuple[int, int] | None:
        sample = self.options.sample
        return (sample, self.options.seed) if sample else None

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        for item in super().read(unit):
            if isinstance(item, Failure):
                yield item
                continue
            key, page = item
            meta = page["meta"]
            if meta["language"] != self.language:
                yield Failure(unit.source, "siteinfo", "other_language",
                              f"a {meta['language'] or 'unknown'}-language dump; --language is {self.language}")
                return
            if meta["_namespace"] != ARTICLE_NAMESPACE or meta["_redirect"] or not page["text"]:
                continue
            for position, url in enumerate(cited_urls(page["text"])):
                yield f"{key}|{position:05d}", _citation(url, meta, position)


def _citation(url: str, page: dict[str, Any], position: int) -> Record:
    page_id = page["id"].rsplit("/", 1)[1]
    return make_record(url, language=page["language"], domain=domain(url), title=page["title"],
                       page_url=page["url"], id=f"wikiref/{page['language']}/{page_id}/{position}")
