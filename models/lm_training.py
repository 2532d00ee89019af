"""Training the perplexity model: sentencepiece, then a KenLM n-gram with the real ``lmplz``.

``lmplz`` and ``build_binary`` are not on PyPI as programs: they are built once from the
``kenlm`` source package with CMake and the operating system's Boost, and cached. Training
text is normalised as cc_net normalises what it scores, one paragraph per line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

KENLM_VERSION = "0.3.0"
KENLM_PROGRAMS = ("lmplz", "build_binary")
BUILD_NEEDS = (
    "build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev "
    "libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"
)


class TrainingError(RuntimeError):
    """A model could not be trained; the message says what to install or change."""


Progress = Callable[[str], None]  # told what a long step is at ("45% compiled"), for progress lines
MAKE_PERCENT = re.compile(r"^\[\s*(\d+)%\]")
LMPLZ_STAGE = re.compile(r"^=== (\d+)/(\d+) (.+?) ===$")


def make_progress(line: str) -> str | None:
    """``[ 45%] Building CXX object ...`` (CMake's Makefiles) as ``45% compiled``."""
    match = MAKE_PERCENT.match(line)
    return f"{match.group(1)}% compiled" if match else None


def lmplz_progress(line: str) -> str | None:
    """``=== 2/5 Calculating and sorting adjusted counts ===`` as ``step 2/5: calculating and sorting adjusted counts``."""
    match = LMPLZ_STAGE.match(line.strip())
    return f"step {match.group(1)}/{match.group(2)}: {match.group(3)[0].lower()}{match.group(3)[1:]}" if match else None


def kenlm_programs(cache: Path, progress: Progress | None = None) -> Path:
    """The folder holding ``lmplz`` and ``build_binary``: $REDPAJAMA_KENLM_BIN, the PATH,
    the cache, or a fresh build from the ``kenlm`` source package into the cache."""
    return find_kenlm_programs(cache) or build_kenlm(kenlm_build_folder(cache), progress)


def kenlm_build_folder(cache: Path) -> Path:
    return cache / f"kenlm-{KENLM_VERSION}" / "bin"


def find_kenlm_programs(cache: Path) -> Path | None:
    """$REDPAJAMA_KENLM_BIN, the PATH's or the cache's ``lmplz`` and ``build_binary``, or None."""
    found = shutil.which("lmplz")
    candidates = [os.environ.get("REDPAJAMA_KENLM_BIN"), os.path.dirname(found) if found else None,
                  str(kenlm_build_folder(cache))]
    for folder in filter(None, candidates):
        if all((Path(folder) / program).is_file() for program in KENLM_PROGRAMS):
            return Path(folder)
    return None


def build_kenlm(target: Path, progress: Progress | None = None) -> Path:
    """Download the ``kenlm`` sdist with pip, build ``lmplz`` and ``build_binary`` with CMake."""
    tell = progress or (lambda detail: None)
    if shutil.which("cmake") is None or shutil.which("make") is None:
        raise TrainingError(f"building KenLM needs cmake and make; on Debian/Ubuntu: apt-get install {BUILD_NEEDS}")
    with tempfile.TemporaryDirectory(prefix="kenlm-build-") as scratch:
        work = Path(scratch)
        tell("downloading the kenlm source package")
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "kenlm",
              f"kenlm=={KENLM_VERSION}", "-d", str(work)], "download the kenlm source package")
        archive = next(work.glob("kenlm-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(path for path in work.iterdir() if path.is_dir() and (path / "CMakeLists.txt").exists())
        compile_kenlm(source, target, tell)
    return target


def compile_kenlm(source: Path, target: Path, progress: Progress) -> None:
    """CMake and make in ``source/build``; ``lmplz`` and ``build_binary`` copied to ``target``."""
    build = source / "build"
    build.mkdir()
    progress("configuring (cmake)")
    _run(["cmake", "-DCMAKE_BUILD_TYPE=Release", "-DCOMPILE_TESTS=OFF", ".."], "configure KenLM", cwd=build)
    progress("0% compiled")
    _run(["make", f"-j{os.cpu_count() or 1}", *KENLM_PROGRAMS], "build KenLM", cwd=build,
         on_line=_reporting(progress, make_progress))
    target.mkdir(parents=True, exist_ok=True)
    for program in KENLM_PROGRAMS:
        shutil.copy2(build / "bin" / program, target / program)


def _reporting(progress: Progress | None, parse: Callable[[str], str | None]) -> Callable[[str], None] | None:
    if progress is None:
        return None

    def on_line(line: str) -> None:
        detail = parse(line)
        if detail:
            progress(detail)

    return on_line


def _run(command: list[str], what: str, cwd: Path | None = None, stdin=None, stdout=subprocess.PIPE,
         on_line: Callable[[str], None] | None = None) -> None:
    """Run a program to its end; ``on_line`` sees each line it prints (stderr, and stdout when
    piped) as it prints it; a failure is a :class:`TrainingError` with its last lines."""
    try:
        process = subprocess.Popen(command, cwd=cwd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    except FileNotFoundError as error:
        raise TrainingError(f"cannot {what}: {error}") from error
    tail: deque[str] = deque(maxlen=5)

    def pump(pipe, keep: bool) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if line and keep:
                    tail.append(line)
                if line and on_line is not None:
                    on_line(line)

    pumps = [threading.Thread(target=pump, args=(process.stderr, True), daemon=True)]
    if stdout is subprocess.PIPE:
        pumps.append(threading.Thread(target=pump, args=(process.stdout, False), daemon=True))
    for thread in pumps:
        thread.start()
    process.wait()
    for thread in pumps:
        thread.join()
    if process.returncode:
        hint = f" (it needs: apt-get install {BUILD_NEEDS})" if "KenLM" in what else ""
        raise TrainingError(f"cannot {what}{hint}: {' | '.join(tail)}")


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


def train_kenlm(tokenized: Path, output: Path, programs: Path, order: int = 5, progress: Progress | None = None) -> Path:
    """``lmplz -o ORDER`` on space-separated pieces, then ``build_binary`` (memory-mappable).

    ``--discount_fallback`` lets small corpora train (their count-of-counts break the
    Kneser-Ney discount estimate); on a full Wikipedia it changes nothing.
    """
    arpa = output.with_suffix(".arpa")
    with tokenized.open("rb") as source, arpa.open("wb") as sink:
        _run([str(programs / "lmplz"), "-o", str(order), "--discount_fallback", "-S", "20%",
              "-T", str(output.parent)], "train the KenLM model", stdin=source, stdout=sink,
             on_line=_reporting(progress, lmplz_progress))
    if progress:
        progress("binarising (build_binary)")
    _run([str(programs / "build_binary"), str(arpa), str(output)], "binarise the KenLM model")
    arpa.unlink()
    return output
