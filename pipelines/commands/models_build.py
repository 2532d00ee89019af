"""``redpajama models build``: the offline stand-ins for cc_net's and RedPajama's models.

From local text it trains (1) a sentencepiece model and a KenLM n-gram on Wikipedia
articles, normalised as cc_net normalises what it scores, (2) the perplexity cutoffs of
that model: the percentiles of its scores on a CommonCrawl reference sample, and (3) a
fastText Wikipedia-reference classifier. It writes ``models.json`` with sha256, training
data, parameters and the classifier's held-out accuracy and keep rate.

The classifier follows RedPajama's recipe when ``wikiref_pages`` are given (WARC files of
pages cited by Wikipedia, from ``fetch-pages``): those pages through our own CommonCrawl
steps (parsing, line dedup, language ID, perplexity), head and middle, at least 1,000
characters, against as many CommonCrawl head+middle documents drawn at random with a seed
(RedPajama took the first rows of each file). Without pages, the positives are the Wikipedia
articles themselves: an offline stand-in, recorded as such. The language model is a small cousin
of cc_net's.

The reference sample and the cited pages are what the CommonCrawl slice's own recipe keeps of them
after language ID, run in this process (:func:`~redpajama.pipelines.inprocess.head.run_through`),
in its order (by snapshot, file name and offset), with every given file in one line dedup group.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import zstandard
from redpajama.core.errors import UsageError
from redpajama.filters import wikiref
from redpajama.filters.langid import LanguageFilter
from redpajama.filters.normalize import normalized_lines
from redpajama.filters.perplexity import Cutoffs, DocumentScorer, percentile_table
from redpajama.models import catalog, lm_training
from redpajama.pipelines.inprocess.head import READ, run_through
from redpajama.pipelines.runs.progress import Phase, emit
from redpajama.slices.commoncrawl import WHOLE_INPUT, CommonCrawl

MIN_WIKI_CHARS = 1000  # RedPajama's positives: documents of at least 1,000 characters
KEPT_BUCKETS = ("head", "middle")
MIN_POSITIVES = 10
CITED_PAGES = "cited-pages"
ARTICLES = "articles"


@dataclass
class BuildSettings:
    wikipedia: list[str]
    commoncrawl: list[str]
    output: Path
    language: str = "en"
    lid_model: str | None = None
    vocab_size: int = 8000
    order: int = 5
    seed: int = 0
    max_documents: int = 200_000
    wikiref_pages: list[str] = field(default_factory=list)  # WARC files of cited pages (fetch-pages)
    notes: list[str] = field(default_factory=list)


PROGRESS_SECONDS = 10.0


def _say(message: str) -> None:
    emit(f"models: {message}")


def _phase(label: str) -> Phase:
    """A long phase of the build: a line when it starts, every 10 seconds while it runs, and at its end."""
    return Phase(f"models: {label}", interval=PROGRESS_SECONDS)


def _every(count: int, step: int = 500) -> bool:
    return count % step == 0


def wikipedia_texts(paths: list[str], language: str, limit: int) -> Iterator[str]:
    """Article texts of ``language`` from Wikipedia slice output (folders or .jsonl[.zst] files)."""
    count = 0
    for path in _output_files(paths):
        with open(path, "rb") as handle:
            raw = zstandard.ZstdDecompressor().stream_reader(handle) if path.suffix == ".zst" else handle
            for line in _lines(raw):
                record = json.loads(line)
                if record.get("meta", {}).get("language", language) != language:
                    continue
                yield record["text"]
                count += 1
                if count >= limit:
                    return


def _output_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.jsonl*") if "_errors" not in p.parts)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"--wikipedia {item}: no such file or folder (run `redpajama run wikipedia` first)")
    if not files:
        raise UsageError("--wikipedia: no .jsonl or .jsonl.zst files found")
    return files


def _lines(raw) -> Iterator[bytes]:
    buffer = b""
    while chunk := raw.read(1 << 20):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def web_documents(paths: list[str], settings: BuildSettings) -> tuple[list[str], dict]:
    """Documents of ``language`` in WET/WARC files after the CommonCrawl recipe's parsing, line
    dedup and language ID, run in this process; line dedup takes every file as one group."""
    # The steps after language ID never run here: they name the published models, never loaded, so that a
    # build does not depend on what an earlier build left in the cache (whole or not).
    slc = CommonCrawl(languages=settings.language, lid_model=settings.lid_model, dedup_scope=WHOLE_INPUT,
                      **CommonCrawl.published_models(settings.language))
    head = run_through(slc, paths, LanguageFilter.name)
    return head.texts, {"inputs": paths, "documents": head.kept_after(READ), "parsed": head.kept_after("parse"),
                        "after_line_dedup": head.kept_after("line_dedup"), "kept": len(head.records)}


def commoncrawl_texts(paths: list[str], settings: BuildSettings) -> tuple[list[str], dict]:
    """The reference sample: CommonCrawl documents of ``language`` (at most ``max_documents``)."""
    with _phase(f"reading the CommonCrawl reference sample ({len(paths)} files)") as phase:
        phase.update("parsing, line dedup and language ID")
        kept, info = web_documents(paths, settings)
        phase.update(f"{len(kept):,} {settings.language} documents kept of {info['documents']:,}")
    return kept[: settings.max_documents], info


def cited_page_positives(settings: BuildSettings, scorer: DocumentScorer, cutoffs: Cutoffs) -> tuple[list[str], dict]:
    """RedPajama's positives: cited pages of ``language`` in the head or middle bucket, >= 1,000 characters."""
    with _phase(f"reading the cited pages ({len(settings.wikiref_pages)} WARC files)") as phase:
        phase.update("parsing, line dedup and language ID")
        texts, info = web_documents(settings.wikiref_pages, settings)
        phase.update(f"{len(texts):,} {settings.language} pages kept of {info['documents']:,}")
    buckets: Counter = Counter()
    positives = []
    for text in texts:
        bucket = cutoffs.bucket(settings.language, scorer.score(text))
        buckets[bucket] += 1
        if bucket in KEPT_BUCKETS and len(text) >= MIN_WIKI_CHARS:
            positives.append(text)
    info = {"kind": CITED_PAGES, **info, "buckets": dict(sorted(buckets.items())), "positives": len(positives)}
    if len(positives) < MIN_POSITIVES:
        raise UsageError(f"--wikiref-pages: only {len(positives)} pages are {settings.language}, head or middle and "
                         f"at least {MIN_WIKI_CHARS} characters ({info}); fetch more pages")
    return positives, info


def _draw(documents: list[str], count: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded uniform sample of ``count`` documents (in draw order), and the documents left out."""
    picked = random.Random(seed).sample(range(len(documents)), min(count, len(documents)))
    chosen = set(picked)
    return [documents[i] for i in picked], [text for i, text in enumerate(documents) if i not in chosen]


def keep_rate(model: str, documents: list[str], over: str) -> dict:
    """How many ``documents`` the classifier keeps (``wiki_prob >= 0.25``)."""
    classifier = wikiref.WikiReferenceClassifier(model)
    kept = sum(classifier.wiki_prob(text) >= classifier.threshold for text in documents)
    return {"documents": len(documents), "kept": kept, "rate": round(kept / len(documents), 4) if documents else None,
            "threshold": classifier.threshold, "over": over}


def build(settings: BuildSettings) -> dict:
    """Train every model into ``settings.output`` and return the manifest written there."""
    started = time.monotonic()
    out = settings.output
    out.mkdir(parents=True, exist_ok=True)
    lang = settings.language
    _output_files(settings.wikipedia)  # a wrong path fails now, not after building KenLM
    programs = lm_training.find_kenlm_programs(catalog.cache_dir().parent)
    if programs is None:
        target = lm_training.kenlm_build_folder(catalog.cache_dir().parent)
        with _phase("building KenLM's lmplz and build_binary from the kenlm source package (once, a few minutes)") as phase:
            programs = lm_training.build_kenlm(target, phase.update)
    _say(f"KenLM programs in {programs}")

    with tempfile.TemporaryDirectory(prefix="models-build-", dir=out) as scratch:
        work = Path(scratch)
        corpus = work / "corpus.txt"
        positives: list[str] = []
        wiki_docs = wiki_lines = wiki_bytes = 0
        with corpus.open("w", encoding="utf-8") as sink, _phase("reading the Wikipedia text") as phase:
            for text in wikipedia_texts(settings.wikipedia, lang, settings.max_documents):
                wiki_docs += 1
                if _every(wiki_docs):
                    phase.update(f"{wiki_docs:,} articles")
                wiki_bytes += len(text.encode("utf-8"))
                lines = normalized_lines(text)
                wiki_lines += len(lines)
                sink.writelines(line + "\n" for line in lines)
                if len(text) >= MIN_WIKI_CHARS:
                    positives.append(text)
            phase.update(f"{wiki_docs:,} articles")
        if wiki_lines == 0:
            raise UsageError(f"--wikipedia: no {lang} article text found")
        _say(f"Wikipedia: {wiki_docs} articles, {wiki_lines} lines, {wiki_bytes / 1e6:.1f} MB")

        with _phase(f"training sentencepiece ({settings.vocab_size:,} pieces at most)"):
            sp_path = lm_training.train_sentencepiece(corpus, work / f"{lang}.sp", settings.vocab_size, settings.seed)
        shutil.move(sp_path, out / f"{lang}.sp.model")
        scorer_sp = str(out / f"{lang}.sp.model")
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor(model_file=scorer_sp)
        tokenized = work / "tokenized.txt"
        with corpus.open(encoding="utf-8") as source, tokenized.open("w", encoding="utf-8") as sink, \
                _phase("cutting the training text into pieces") as phase:
            for number, line in enumerate(source, 1):
                sink.write(" ".join(processor.encode(line.rstrip("\n"), out_type=str)) + "\n")
                if _every(number, 10_000):
                    phase.update(f"{number:,} of {wiki_lines:,} lines")
            phase.update(f"{wiki_lines:,} lines")
        _say(f"sentencepiece: {processor.get_piece_size()} pieces")
        with _phase(f"training the {settings.order}-gram KenLM model (lmplz)") as phase:
            lm_training.train_kenlm(tokenized, out / f"{lang}.arpa.bin", programs, settings.order, phase.update)
            phase.update("written")

    reference, cc_info = commoncrawl_texts(settings.commoncrawl, settings)
    if len(reference) < 10:
        raise UsageError(f"--commoncrawl: only {len(reference)} {lang} documents; cutoffs need at least 10")
    scorer = DocumentScorer(scorer_sp, str(out / f"{lang}.arpa.bin"))
    scores = []
    with _phase(f"scoring {len(reference):,} reference documents") as phase:
        for text in reference:
            scores.append(scorer.score(text))
            if _every(len(scores)):
                phase.update(f"{len(scores):,} of {len(reference):,}")
        phase.update("")
    (out / "cutoff.csv").write_text(percentile_table({lang: scores}), encoding="utf-8")
    _say(f"cutoffs from {len(reference)} CommonCrawl documents")

    cutoffs = Cutoffs.load(str(out / "cutoff.csv"))
    head_middle = [text for text, score in zip(reference, scores, strict=True)
                   if cutoffs.bucket(lang, score) in KEPT_BUCKETS]
    if settings.wikiref_pages:
        positives, positives_info = cited_page_positives(settings, scorer, cutoffs)
        negatives, held_out = _draw(head_middle, len(positives), settings.seed)
        negatives_info = {"kind": "commoncrawl head+middle, uniform sample", "seed": settings.seed}
    else:
        positives_info = {"kind": ARTICLES, "articles": wiki_docs, "positives": len(positives)}
        negatives, _ = _draw(reference, len(positives), settings.seed)
        drawn = set(negatives)
        held_out = [text for text in head_middle if text not in drawn]
        negatives_info = {"kind": "commoncrawl reference documents, uniform sample", "seed": settings.seed}
    with _phase(f"training the Wikipedia-reference classifier ({len(positives):,} positives, "
                f"{len(negatives):,} negatives)"):
        classifier = wikiref.train(positives, negatives, str(out / "wikiref.bin"), settings.seed)
    if len(held_out) >= MIN_POSITIVES:
        over = "CommonCrawl head+middle reference documents not used in training"
    else:
        held_out, over = head_middle, "all CommonCrawl head+middle reference documents"
    with _phase(f"measuring its keep rate on {len(held_out):,} documents"):
        classifier["keep_rate"] = keep_rate(str(out / "wikiref.bin"), held_out, over)
    classifier["positives"] = positives_info
    classifier["negatives"] = {**negatives_info, "count": len(negatives)}
    _say(f"wikiref ({positives_info['kind']}): {classifier['examples']}, held-out accuracy "
         f"{classifier['held_out_accuracy']}, keeps {classifier['keep_rate']['rate']:.1%} of CommonCrawl head+middle")

    files = {"sp": f"{lang}.sp.model", "lm": f"{lang}.arpa.bin", "cutoffs": "cutoff.csv", "wikiref": "wikiref.bin"}
    manifest = {
        "language": lang,
        "files": {name: _describe(out / filename) for name, filename in files.items()},
        "training": {
            "wikipedia": {"inputs": settings.wikipedia, "articles": wiki_docs, "lines": wiki_lines, "bytes": wiki_bytes},
            "commoncrawl": cc_info,
        },
        "parameters": {
            "sentencepiece": {"vocab_size": settings.vocab_size, "pieces": processor.get_piece_size(), "model_type": "unigram"},
            "kenlm": {"version": lm_training.KENLM_VERSION, "order": settings.order, "discount_fallback": True},
            "cutoffs": {"percentiles": [30, 60], "reference_documents": len(reference)},
            "wikiref": classifier,
        },
        "notes": [
            WIKIREF_NOTES[positives_info["kind"]],
            "Cutoffs are this model's own 30th/60th percentiles on the CommonCrawl reference sample.",
            *settings.notes,
        ],
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / catalog.BUILT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


WIKIREF_NOTES = {
    CITED_PAGES: "The Wikipedia-reference classifier follows RedPajama's recipe: pages cited by Wikipedia (head and "
    "middle, >= 1,000 characters) against as many CommonCrawl head+middle documents, drawn at random with a seed.",
    ARTICLES: "The Wikipedia-reference classifier is the offline stand-in: RedPajama trained on pages cited by "
    "Wikipedia (positives) vs CommonCrawl; here the positives are Wikipedia articles themselves (build with "
    "--wikiref-pages for the recipe).",
}


def _describe(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return {"file": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
