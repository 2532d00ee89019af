"""arXiv's bulk-source manifest, ``s3://arxiv/src/arXiv_src_manifest.xml``: one ``<file>`` per
source tar with its ``<filename>`` (``src/arXiv_src_YYMM_NNN.tar``), ``<yymm>``, ``<size>`` in
bytes and ``<num_items>`` (papers). RedPajama took every tar that existed at download time;
a cut-off month (``until``) makes that choice repeatable."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

TAR_NAME = re.compile(r"arXiv_src_(\d{4})_\d+\.tar$")


@dataclass(frozen=True)
class SourceTar:
    name: str  # as listed, e.g. src/arXiv_src_2303_001.tar
    yymm: str
    size: int  # bytes, 0 when not listed
    papers: int  # 0 when not listed


def months(yymm: str) -> int:
    """YYMM as months since 1900 with arXiv's years (from 1991) in order, so that 9108 < 0001."""
    year = int(yymm[:2])
    return ((year + 100) if year < 91 else year) * 12 + int(yymm[2:])


def yymm_of(name: str) -> str | None:
    """The month of a tar named ``arXiv_src_YYMM_NNN.tar`` (any folder), or None."""
    match = TAR_NAME.search(name)
    return match.group(1) if match else None


def up_to(yymm: str | None, until: str | None) -> bool:
    """Whether a tar of month ``yymm`` is within a cut-off ``until`` (no cut-off: all are)."""
    return until is None or (yymm is not None and months(yymm) <= months(until))


def parse(data: bytes) -> list[SourceTar]:
    """The tars the manifest lists, in its order. Raises ``ValueError`` for text that is not one."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except etree.XMLSyntaxError as error:
        raise ValueError(f"not an arXiv source manifest: {error}") from None
    tars = []
    for entry in root.iter("file"):
        name = (entry.findtext("filename") or "").strip()
        month = (entry.findtext("yymm") or "").strip() or yymm_of(name)
        if not name.endswith(".tar") or not month:
            continue
        tars.append(SourceTar(name, month, _number(entry.findtext("size")), _number(entry.findtext("num_items"))))
    return tars


def _number(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0
