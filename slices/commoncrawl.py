"""CommonCrawl: cc_net's pipeline plus RedPajama's exact dedup and Wikipedia-reference filter (recipe §1).

Steps, in order: parse WET (title line, 300-character minimum) -> line dedup with cc_net's
two-pass semantics within a scope -> fastText language ID -> sentencepiece + KenLM
perplexity buckets (keep head and middle) -> exact dedup on the WET digest, keep-first by
(snapshot, file, offset) -> Wikipedia-reference classifier (keep wiki_prob >= 0.25).
Default inputs are the snapshots' ``wet.paths.gz`` listings, expanded on the workers.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Any

from redpajama import manifests
from redpajama.core import storage, streams
from redpajama.core.errors import SourceError, UsageError, failure_reason
from redpajama.core.records import (
    Drop,
    Failure,
    GroupKeyStep,
    KeepFirstStep,
    NearDedupStep,
    Record,
    Step,
    StepResult,
)
from redpajama.dedup import exact
from redpajama.filters.langid import LanguageFilter
from redpajama.filters.perplexity import CCNET, Cutoffs, DocumentScorer, PerplexityBuckets
from redpajama.filters.webpage import ParseWebDocument, source_domain
from redpajama.filters.wikiref import WikiReferenceClassifier
from redpajama.formats.warc_records import RawDocument, snapshot_in
from redpajama.formats.webarchive import read_archive
from redpajama.models import catalog
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, comma_list, option

SCOPES = ("shard", "snapshot", "file", "all")
WHOLE_INPUT = "all"  # the scope holding every input of the run: one group
LISTING_SUFFIXES = (".paths.gz", ".paths")
UNKNOWN_SNAPSHOT = "unknown"


def cc_net_shard(index: int, total: int, shards: int) -> int:
    """The shard holding listing entry ``index``: cc_net gives shard i the entries
    ``[i * total // shards, (i + 1) * total // shards)``."""
    shard = min(shards - 1, index * shards // max(total, 1))
    while shard > 0 and shard * total // shards > index:
        shard -= 1
    while (shard + 1) * total // shards <= index:
        shard += 1
    return shard


# --- the recipe's steps that need no model ---------------------------------------------------


def _line_keys(record: Record) -> list[bytes]:
    hashes = exact.line_hashes(record["text"])
    record["meta"]["_line_hashes"] = b"".join(hashes)  # spares hashing again if this record is the one deduped
    return hashes


def _remove_shared_lines(record: Record, shared: Container[bytes]) -> StepResult:
    packed = record["meta"].pop("_line_hashes", None)
    if packed is None:
        hashes = exact.line_hashes(record["text"])
    else:
        hashes = [packed[i : i + exact.HASH_BYTES] for i in range(0, len(packed), exact.HASH_BYTES)]
    text, nlines = exact.remove_lines(record["text"], hashes, shared)
    if nlines == 0:  # every line shared with another document of the scope, or a repeat of one of its own
        return Drop("duplicate_lines", scores={"shared_lines": sum(digest in shared for digest in hashes)})
    record["text"] = text
    record["meta"]["nlines"] = nlines
    record["meta"]["length"] = len(text)
    return record


def _scope(record: Record) -> str:
    return record["meta"]["_scope"]


def line_dedup_step() -> GroupKeyStep:
    return GroupKeyStep(
        name="line_dedup",
        group=_scope,
        keys=_line_keys,
        apply=_remove_shared_lines,
        description="line_dedup: cc_net two-pass line dedup (normalised SHA-1 of each line; a line found in "
        "two or more documents of the scope is removed from all of them), drop documents left empty",
    )


def digest_dedup_step() -> KeepFirstStep:
    return exact.keep_first_step(
        "digest_dedup",
        key=lambda record: record["meta"]["digest"],
        reason="duplicate_digest",
        description="digest_dedup: exact dedup on the WET digest across the snapshots of the run, "
        "keep the first by (snapshot, file, offset)",
    )


# --- the slice ----------------------------------------------------------------------------------

_MANIFEST = manifests.load("commoncrawl")


@dataclass(frozen=True)
class CommonCrawlOptions(SliceOptions):
    snapshot: str | None = option(
        None, f"comma-separated snapshots for the default sources (default: {','.join(_MANIFEST['snapshots'])})")
    mirror: str | None = option(None, f"base URL replacing {_MANIFEST['data_root']} for WET files")
    languages: str = option("en", "comma-separated languages to keep")
    lid_model: str | None = option(None, "fastText language ID model (path, URL or gs://)")
    sp_model: str | None = option(None, "sentencepiece model, or LANG=PATH,... for several languages")
    lm_model: str | None = option(None, "KenLM model, or LANG=PATH,... for several languages")
    cutoffs: str | None = option(None, "perplexity cutoffs (cc_net cutoff.csv layout), or 'ccnet' for cc_net's table")
    wikiref_model: str | None = option(None, "fastText Wikipedia-reference classifier")
    models_dir: str | None = option(
        None, "a `redpajama models build` output (default: the one in the model cache, if built)")
    dedup_scope: str = option("shard", "line dedup scope: cc_net's 1/N of a snapshot's listing (RedPajama), "
                              "a whole snapshot (its line hashes meet on one worker), each file, or all the "
                              "run's inputs as one group", choices=SCOPES)
    dedup_shards: int = option(_MANIFEST["dedup_shards"], "N for --dedup-scope shard")
    keep_buckets: str = option("head,middle", "perplexity buckets to keep")
    language_threshold: float = option(0.5, "fastText language score a document needs")
    wiki_threshold: float = option(0.25, "Wikipedia-reference classifier probability a document needs")
    min_length: int = option(300, "characters a document needs after line dedup")
    near_dedup: bool = option(False, "also remove near-duplicates by MinHash LSH (not in RedPajama's recipe)")
    near_dedup_threshold: float = option(0.8, "word 5-gram Jaccard for --near-dedup")


class CommonCrawl(Slice):
    name = "commoncrawl"
    summary = "CommonCrawl WET through cc_net's recipe, digest dedup and the Wikipedia-reference filter"
    folder = "common_crawl"  # RedPajama's name for it
    Options = CommonCrawlOptions
    options: CommonCrawlOptions

    @classmethod
    def describe_sources(cls) -> str:
        manifest = manifests.load("commoncrawl")
        return (
            f"CommonCrawl snapshots {' '.join(manifest['snapshots'])}, WET files listed in "
            f"{manifest['listing']}; local or gs:// WET files, WARC files (responses through resiliparse), "
            "or a wet.paths.gz listing."
        )

    limits_in_plan = True  # --limit counts WET files inside a listing, not listings

    # --- options ------------------------------------------------------------------------
    def snapshots(self) -> list[str]:
        return comma_list(self.options.snapshot) or _MANIFEST["snapshots"]

    def languages(self) -> tuple[str, ...]:
        return tuple(comma_list(self.options.languages))

    def default_inputs(self) -> list[str]:
        listing = _MANIFEST["listing"]
        return [listing.format(snapshot=snapshot) for snapshot in self.snapshots()]

    def validate(self) -> None:
        for snapshot in comma_list(self.options.snapshot):
            if snapshot_in(f"CC-MAIN-{snapshot}") != snapshot:
                raise UsageError(f"--snapshot takes YYYY-WW (for example 2023-06), got {snapshot!r}")
        if self.options.dedup_shards < 1:
            raise UsageError("--dedup-shards must be at least 1")
        chosen = self.chosen_models  # resolved here, on the launcher, and carried to the workers
        remote = [*chosen["sp"].values(), *chosen["lm"].values(), chosen["wikiref"], chosen["cutoffs"]]
        for location in remote:
            if storage.is_url(location) and not _reachable(location):
                raise UsageError(
                    f"cannot reach {location} (offline?): build local models with `redpajama models build` "
                    "or pass --sp-model, --lm-model, --cutoffs and --wikiref-model"
                )
        Cutoffs.load(chosen["cutoffs"])

    @staticmethod
    def published_models(language: str) -> dict[str, str]:
        """The models RedPajama's recipe ran with, by location (nothing is fetched): sentencepiece,
        KenLM and cutoffs of cc_net, RedPajama's classifier; as options of this slice."""
        published = _MANIFEST["models"]
        return {"sp_model": published["sp"].format(language=language),
                "lm_model": published["lm"].format(language=language),
                "cutoffs": CCNET, "wikiref_model": published["wikiref"]}

    @functools.cached_property
    def chosen_models(self) -> dict[str, Any]:
        """Concrete model locations: explicit options, else a built models folder, else the published models."""
        languages = self.languages()
        lid = catalog.locate(catalog.LID, self.options.lid_model)
        built = catalog.built_models(self.options.models_dir)
        if self.options.models_dir and built is None:
            raise UsageError(f"--models-dir {self.options.models_dir}: no models.json (run `redpajama models build`)")
        published = _MANIFEST["models"]
        sp = self._per_language("sp_model", self.options.sp_model)
        lm = self._per_language("lm_model", self.options.lm_model)
        cutoffs = self.options.cutoffs
        origin = "options"
        if not sp and not lm and built is not None and set(languages) <= {built["language"]}:
            sp, lm = {built["language"]: built["sp"]}, {built["language"]: built["lm"]}
            cutoffs, origin = cutoffs or built["cutoffs"], f"built: {built['folder']}"
        elif not sp and not lm:
            sp = {lang: published["sp"].format(language=lang) for lang in languages}
            lm = {lang: published["lm"].format(language=lang) for lang in languages}
            cutoffs, origin = cutoffs or CCNET, "published cc_net models"
        if set(sp) != set(languages) or set(lm) != set(languages):
            raise UsageError(f"--sp-model and --lm-model must name a model for each of: {', '.join(languages)}")
        if not cutoffs:
            raise UsageError(
                "--cutoffs is needed with your own language model: perplexity cutoffs belong to the model they were "
                "measured with (`redpajama models build` writes them beside its model)"
            )
        wikiref = self.options.wikiref_model or (built or {}).get("wikiref") or published["wikiref"]
        if wikiref == published["wikiref"]:
            recipe = catalog.RELEASED_WIKIREF
        elif self.options.wikiref_model:
            recipe = "given with --wikiref-model"
        else:
            recipe = built["wikiref_recipe"]
        for location in [*sp.values(), *lm.values(), wikiref, cutoffs]:
            if location != CCNET and "://" not in location and catalog.local_file(location) is None:
                raise UsageError(f"model file not found: {location}")
        return {"lid": lid, "sp": sp, "lm": lm, "cutoffs": cutoffs, "wikiref": wikiref, "wikiref_recipe": recipe,
                "origin": origin}

    def _per_language(self, key: str, value: str | None) -> dict[str, str]:
        if not value:
            return {}
        if "=" not in value:
            languages = self.languages()
            if len(languages) != 1:
                raise UsageError(f"--{key.replace('_', '-')}: give LANG=PATH for each of {', '.join(languages)}")
            return {languages[0]: value}
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        return {lang.strip(): path.strip() for lang, path in pairs}

    def models(self) -> dict[str, str]:
        chosen = self.chosen_models
        return {"lid": chosen["lid"], "cutoffs": chosen["cutoffs"], "wikiref": chosen["wikiref"],
                **{f"sp:{lang}": location for lang, location in chosen["sp"].items()},
                **{f"lm:{lang}": location for lang, location in chosen["lm"].items()}}

    def run_info(self) -> dict[str, Any]:
        chosen = self.chosen_models
        return {
            "models": chosen,
            "cutoffs": {"location": chosen["cutoffs"], "from": chosen["origin"],
                        "values": {lang: list(Cutoffs.load(chosen["cutoffs"]).by_language.get(lang, ()))
                                   for lang in self.languages()}},
            "dedup_scope": self.options.dedup_scope,
            "wikiref": {"location": chosen["wikiref"], "recipe": chosen.get("wikiref_recipe", "unknown")},
        }

    # --- the recipe ---------------------------------------------------------------------
    def steps(self) -> list[Step | GroupKeyStep | KeepFirstStep | NearDedupStep]:
        chosen = self.chosen_models
        scorers = {lang: DocumentScorer(chosen["sp"][lang], chosen["lm"][lang]) for lang in self.languages()}
        keep = tuple(comma_list(self.options.keep_buckets))
        return [
            ParseWebDocument(self.options.min_length),
            line_dedup_step(),
            LanguageFilter(chosen["lid"], self.languages(), self.options.language_threshold),
            PerplexityBuckets(scorers, chosen["cutoffs"], keep),
            digest_dedup_step(),
            WikiReferenceClassifier(chosen["wikiref"], self.options.wiki_threshold),
            *self._near_dedup(),
        ]

    def _near_dedup(self) -> list[NearDedupStep]:
        if not self.options.near_dedup:
            return []
        threshold = self.options.near_dedup_threshold
        return [NearDedupStep(name="near_dedup", text=lambda record: record["text"], threshold=threshold,
                              description=f"near_dedup: MinHash LSH, word 5-gram Jaccard >= {threshold} (optional)")]

    def step_descriptions(self) -> list[str]:
        try:
            return super().step_descriptions()
        except UsageError:
            return ["parse", "line_dedup", "language_id", "perplexity", "digest_dedup", "wikiref"]

    def partition(self, record: Record) -> str:
        meta = record["meta"]
        return f"{meta['_snapshot']}/{meta['language']}_{meta['bucket']}"

    def always_written(self) -> tuple[str, ...]:
        return ()

    # --- reading -----------------------------------------------------------------------
    def plan(self, source: str) -> Iterator[WorkUnit | Failure]:
        scope = self.options.dedup_scope
        if not source.endswith(LISTING_SUFFIXES):
            snapshot = snapshot_in(source)
            yield WorkUnit(source, context={"snapshot": snapshot, "scope": _local_scope(scope, snapshot, source)})
            return
        try:
            paths = self._listing(source)
        except (SourceError, OSError, EOFError, UnicodeDecodeError) as error:
            yield Failure(source, "listing", "unreadable_listing", f"{type(error).__name__}: {error}", step="plan")
            return
        snapshot = snapshot_in(source) or UNKNOWN_SNAPSHOT
        shards = self.options.dedup_shards
        root = (self.options.mirror or _MANIFEST["data_root"]).rstrip("/") + "/"
        limit = self.context.file_limit
        chosen = paths[:limit] if limit else paths
        for index, path in enumerate(chosen):
            if scope == "shard":
                group = f"{snapshot}/shard-{cc_net_shard(index, len(paths), shards):05d}"
            elif scope == WHOLE_INPUT:
                group = WHOLE_INPUT
            else:
                group = snapshot if scope == "snapshot" else path
            location = path if storage.is_url(path) or path.startswith("gs://") else root + path
            yield WorkUnit(location, context={"snapshot": snapshot, "scope": group})

    def _listing(self, source: str) -> list[str]:
        with storage.open_range(source) as stream:
            chunks = streams.decompressed_chunks(stream, source, limits=self.context.limits)
            return [line.strip().decode("utf-8") for _, line in streams.iter_lines(chunks, 1 << 16) if line.strip()]

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        source = unit.source
        snapshot = unit.context.get("snapshot")
        scope = unit.context.get("scope") or source
        name = posixpath.basename(source)
        try:
            for item in read_archive(lambda offset: storage.open_range(source, offset), source, self.context.limits):
                if isinstance(item, str):
                    snapshot = snapshot or item
                    continue
                if isinstance(item, Failure):
                    yield item
                    continue
                yield self._keyed(item, snapshot or UNKNOWN_SNAPSHOT, scope, name)
        except SourceError as error:
            yield Failure(source, "whole file", failure_reason(error), str(error))

    @staticmethod
    def _keyed(document: RawDocument, snapshot: str, scope: str, name: str) -> Keyed:
        place = f"{document.offset}" + (f".{document.index}" if document.index else "")
        record_id = document.record_id.removeprefix("urn:uuid:") or f"{name}/{place}"
        meta: dict[str, Any] = {
            "url": document.url,
            "date_download": document.date,
            "digest": document.digest,
            "length": document.length,
            "nlines": None,
            "source_domain": source_domain(document.url),
            "title": None,
            "original_nlines": None,
            "original_length": None,
            "language": None,
            "language_score": None,
            "perplexity": None,
            "bucket": None,
            "wiki_prob": None,
            "source": f"cc/{snapshot}",
            "id": f"cc/{snapshot}/{record_id}",
            "_snapshot": snapshot,
            "_scope": scope,
        }
        if document.html is not None:
            meta["_html"] = document.html
            meta["_content_type"] = document.content_type
        record = {"text": document.text or "", "meta": meta}
        order = f"{snapshot}|{name}|{document.offset:015d}"
        return (f"{order}.{document.index:06d}" if document.index else order), record


def _reachable(url: str) -> bool:
    """A published model is usable if it is cached already or its server answers."""
    return catalog.cached_path(url, posixpath.basename(url)).is_file() or storage.exists(url)


def _local_scope(scope: str, snapshot: str | None, source: str) -> str:
    """Files given one by one have no listing position: a shard is all given files of a snapshot."""
    if scope == "file":
        return source
    if scope == WHOLE_INPUT:
        return WHOLE_INPUT
    return snapshot or UNKNOWN_SNAPSHOT
