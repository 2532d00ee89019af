"""What a slice's manifest (``manifests/<slice>.json``) says about the slice besides its sources:
the sample ``make demo`` runs it on (``"demo"``) and the published figures ``redpajama report``
compares it with (``"report"``). A slice without these sections has no demo sample, and the
report counts it without anything to compare with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redpajama import manifests


def manifest_of(name: str) -> dict[str, Any]:
    """The manifest of the slice ``name``, or nothing when it has none."""
    return manifests.load(name) if manifests.exists(name) else {}


@dataclass(frozen=True)
class DemoSample:
    """The sample the demo runs a slice on.

    ``local`` names paths or globs under the sample data folder (``--shared``): they are read when
    every one of them matches, else ``remote`` (URLs of a public sample; none: the slice is skipped).
    ``packages`` are installed Python packages copied, with their licence, as repositories.
    ``options`` are the slice's options: a value ``"{shared}/PATH"`` is that file of the sample data,
    given when it is there; ``"{tokenizer}"`` is the tokenizer the demo counts tokens with.
    ``models_from`` names the slice whose demo output the offline models (``models build``) are
    built from before this slice runs, with this sample as their CommonCrawl reference.
    """

    local: tuple[str, ...] = ()
    remote: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    file_limit: int | None = None
    models_from: str | None = None

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> DemoSample | None:
        section = manifest.get("demo")
        if section is None:
            return None
        return cls(tuple(section.get("local", ())), tuple(section.get("remote", ())), tuple(section.get("packages", ())),
                   dict(section.get("options", {})), section.get("file_limit"), section.get("models_from"))


@dataclass(frozen=True)
class ReportTarget:
    """What the report compares a slice with: its row in RedPajama's table (the report's order),
    RedPajama's published tokens, LLaMA's sampling share, the folder RedPajama's download keeps it
    in when that is not the slice's, and the units of the whole slice (``full_scale``: a count, or
    where to count them; ``corpora`` when it is counted by corpus, as ``published_by_corpus`` splits it)."""

    row: int | None = None
    redpajama_tokens: float | None = None
    llama_share: float | None = None
    release_folder: str | None = None
    full_scale: dict[str, Any] = field(default_factory=dict)
    published_by_corpus: dict[str, Any] | None = None
    source: str = ""  # the manifest it was read from

    @classmethod
    def of(cls, name: str, manifest: dict[str, Any]) -> ReportTarget:
        section = manifest.get("report", {})
        return cls(section.get("row"), section.get("redpajama_tokens"), section.get("llama_share"),
                   section.get("release_folder"), dict(section.get("full_scale", {})), section.get("published_by_corpus"),
                   f"manifests/{name}.json")
