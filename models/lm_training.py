"""Training the perplexity model: sentencepiece, then a KenLM n-gram with the real ``lmplz``.

``lmplz`` and ``build_binary`` are not on PyPI as programs: they are built once from the
``kenlm`` source package with CMake and the operating system's Boost, and cached. Training
text is normalised as cc_net normalises what it scores, one paragraph per line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from redpajama.filters.normalize import normalize

KENLM_VERSION = "0.3.0"
KENLM_PROGRAMS = ("lmplz", "build_binary")
BUILD_NEEDS = (
    "build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev "
    "libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"
)


class TrainingError(RuntimeError):
    """A model could not be trained; the message says what to install or change."""


def normalized_lines(text: str) -> list[str]:
    """The language-model training lines of a document: each paragraph, normalised."""
    return [line for line in (normalize(paragraph) for paragraph in text.split("\n")) if line]


def kenlm_programs(cache: Path) -> Path:
    """The folder holding ``lmplz`` and ``build_binary``: $REDPAJAMA_KENLM_BIN, the PATH,
    the cache, or a fresh build from the ``kenlm`` source package into the cache."""
    candidates = [os.environ.get("REDPAJAMA_KENLM_BIN")]
    found = shutil.which("lmplz")
    candidates.append(os.path.dirname(found) if found else None)
    built = cache / f"kenlm-{KENLM_VERSION}" / "bin"
    candidates.append(str(built))
    for folder in filter(None, candidates):
        if all((Path(folder) / program).is_file() for program in KENLM_PROGRAMS):
            return Path(folder)
    return build_kenlm(built)


def build_kenlm(target: Path) -> Path:
    """Download the ``kenlm`` sdist with pip, build ``lmplz`` and ``build_binary`` with CMake."""
    if shutil.which("cmake") is None or shutil.which("make") is None:
        raise TrainingError(f"building KenLM needs cmake and make; on Debian/Ubuntu: apt-get install {BUILD_NEEDS}")
    with tempfile.TemporaryDirectory(prefix="kenlm-build-") as scratch:
        work = Path(scratch)
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "kenlm",
              f"kenlm=={KENLM_VERSION}", "-d", str(work)], "download the kenlm source package")
        archive = next(work.glob("kenlm-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(path for path in work.iterdir() if path.is_dir() and (path / "CMakeLists.txt").exists())
        build = source / "build"
        build.mkdir()
        _run(["cmake", "-DCMAKE_BUILD_TYPE=Release", "-DCOMPILE_TESTS=OFF", ".."], "configure KenLM", cwd=build)
        _run(["make", f"-j{os.cpu_count() or 1}", *KENLM_PROGRAMS], "build KenLM", cwd=build)
        target.mkdir(parents=True, exist_ok=True)
        for program in KENLM_PROGRAMS:
            shutil.copy2(build / "bin" / program, target / program)
    return target


def _run(command: list[str], what: str, cwd: Path | None = None, stdin=None, stdout=subprocess.PIPE) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    except FileNotFoundError as error:
        raise TrainingError(f"cannot {what}: {error}") from error
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-5:]
        hint = f" (it needs: apt-get install {BUILD_NEEDS})" if "KenLM" in what else ""
        raise TrainingError(f"cannot {what}{hint}: {' | '.join(tail)}") from error


def train_sentencepiece(corpus: Path, prefix: Path, vocab_size: int, seed: int = 0) -> Path:
    """A unigram sentencepiece model on normalised lines; the vocabulary shrinks to fit small corpora."""
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=0.9999,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        seed_sentencepiece_size=1_000_000,
        num_threads=1,
        minloglevel=2,
    )
    return Path(f"{prefix}.model")


def train_kenlm(tokenized: Path, output: Path, programs: Path, order: int = 5) -> Path:
    """``lmplz -o ORDER`` on space-separated pieces, then ``build_binary`` (memory-mappable).

    ``--discount_fallback`` lets small corpora train (their count-of-counts break the
    Kneser-Ney discount estimate); on a full Wikipedia it changes nothing.
    """
    arpa = output.with_suffix(".arpa")
    with tokenized.open("rb") as source, arpa.open("wb") as sink:
        _run([str(programs / "lmplz"), "-o", str(order), "--discount_fallback", "-S", "20%",
              "-T", str(output.parent)], "train the KenLM model", stdin=source, stdout=sink)
    _run([str(programs / "build_binary"), str(arpa), str(output)], "binarise the KenLM model")
    arpa.unlink()
    return output
