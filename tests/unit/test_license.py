"""Repository licences as GitHub's licensee gives them: reference texts, real licence files of
installed packages and the variants real repositories have, against the real licensee when it
is installed (Debian's ruby-licensee; ``make setup`` installs it as root)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from redpajama.filters.license import detect, match_file, normalize, templates
from redpajama.slices.github import license_texts

from tests.conftest import SHARED, need

REFERENCE_TEXTS = SHARED / "github" / "choosealicense-licenses"
LICENSEE = shutil.which("licensee") and shutil.which("ruby")
PROJECT_LICENSES = ('require "licensee"; ARGV.each { |d| p = Licensee.project(d, detect_readme: false, '
                    'detect_packages: false); puts(p.license ? p.license.key : "none") }')


def licensee_keys(folders: list[Path]) -> list[str | None]:
    """GitHub's answer for each repository folder, from the real licensee (one Ruby process)."""
    out = subprocess.run(["ruby", "-e", PROJECT_LICENSES, *map(str, folders)], capture_output=True, text=True, check=True)
    return [None if line == "none" else line for line in out.stdout.splitlines()]


def package_license(distribution: str, name: str) -> str:
    files = [f for f in importlib.metadata.distribution(distribution).files or [] if f.name == name]
    return files[0].locate().read_text("utf-8") if files else pytest.skip(f"{distribution} has no {name}")


def repository(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_bytes(text.encode("utf-8"))
    return root


def variants() -> dict[str, tuple[dict[str, str], str | None]]:
    """Real licence files changed the way real repositories change them, with GitHub's answer."""
    apache = package_license("requests", "LICENSE")  # Apache-2.0 without its appendix
    mit = package_license("urllib3", "LICENSE.txt")
    body = mit.split("\n", 1)[1]
    notice = "\nNOTICE\n\nThis product includes software developed at Example Corp (https://example.com/).\n"
    return {
        "apache without appendix": ({"LICENSE": apache}, "apache-2.0"),
        "apache without title": ({"LICENSE": apache.split("\n", 2)[2]}, "apache-2.0"),
        "apache with a notice after its end": ({"LICENSE": apache + "\nEND OF TERMS AND CONDITIONS\n" + notice}, "apache-2.0"),
        "apache with a notice, no end line": ({"LICENSE": apache + notice}, "other"),
        "mit with crlf": ({"LICENSE": mit.replace("\n", "\r\n")}, "mit"),
        "mit as markdown": ({"LICENSE.md": "# MIT License\n" + body.replace("Copyright", "**Copyright**", 1)}, "mit"),
        "mit with copyright lines appended": ({"LICENSE": mit + "\nCopyright (c) 2021 A\nCopyright (c) 2022 B\n"}, "other"),
        "mit with a project header": ({"LICENSE": "The license of FooBar, a library for parsing things.\n\n" + mit},
                                      "other"),
        "two licences": ({"LICENSE-MIT": mit, "LICENSE-APACHE": apache}, "other"),
        "the same licence twice": ({"LICENSE": mit, "LICENSE.txt": mit}, "mit"),
        "copyright line only": ({"LICENSE": "Copyright (c) 2020 Someone\n"}, "no-license"),
        "a COPYRIGHT file beside the licence": ({"LICENSE": mit, "COPYRIGHT": "Copyright (c) 2020 Someone\n"}, "mit"),
        "no licence file": ({"README.md": "# x\n"}, None),
    }


@pytest.mark.parametrize("name", list(variants()))
def test_real_world_variants_get_githubs_answer(name, tmp_path):
    files, expected = variants()[name]
    found = detect(files)
    assert found.license == expected
    assert found.allowed == (expected in ("mit", "apache-2.0"))
    if LICENSEE:
        assert licensee_keys([repository(tmp_path / "repo", files)]) == [expected]


# Reference texts licensee does not know, and licences whose texts are not shipped (none is allowed).
UNKNOWN_TO_LICENSEE = {"blueoak-1.0.0", "bsd-2-clause-patent", "cern-ohl-p-2.0", "cern-ohl-s-2.0", "cern-ohl-w-2.0",
                       "gfdl-1.3"}
NO_TEXT_HERE = {"cecill-2.1", "mulanpsl-2.0", "odbl-1.0", "vim", "ncsa"}  # ncsa: a newer text than licensee's


def test_choosealicense_reference_texts_name_themselves():
    unmatched = set()
    for path in sorted(need(REFERENCE_TEXTS).glob("*.txt")):
        key = match_file(path.read_text("utf-8").split("---", 2)[2]).key
        assert key in (path.stem, "other"), path.name
        if key == "other":
            unmatched.add(path.stem)
    assert unmatched == UNKNOWN_TO_LICENSEE | NO_TEXT_HERE


def test_normalisation_is_licensees_for_the_allowed_licences():
    # licensee 9.15's normalised texts, first and last words (the full texts are compared with the real tool below)
    mit = next(t for t in templates() if t.key == "mit").normalized
    assert mit.startswith("permission is hereby granted, free of charge, to any person")
    assert mit.endswith("arising from, out of or in connection with the software or the use or other dealings in the software.")
    apache = next(t for t in templates() if t.key == "apache-2.0").normalized
    assert apache.startswith("terms and conditions for use, reproduction, and distribution - definitions.")
    assert "how to apply" not in apache  # cut at "END OF TERMS AND CONDITIONS"
    assert normalize("The MIT License (MIT)\n\nCopyright (c) 2020 X\n\nSome licence text.") == "some license text."


@pytest.mark.skipif(not LICENSEE, reason="licensee is not installed")
def test_every_licence_file_of_the_installed_packages_agrees_with_licensee(tmp_path):
    paths = sorted({str(f.locate()) for dist in importlib.metadata.distributions() for f in dist.files or []
                    if "licen" in f.name.lower() or f.name.lower().startswith("copying")})
    assert len(paths) > 40
    folders = []
    for number, path in enumerate(p for p in paths if os.path.isfile(p)):
        name = Path(path).name if Path(path).name.lower().startswith(("licen", "copying")) else "LICENSE"
        folders.append(tmp_path / str(number))
        folders[-1].mkdir()
        shutil.copyfile(path, folders[-1] / name)
    ours = [detect(license_texts(str(folder))).license for folder in folders]
    assert [(str(f), o) for f, o in zip(folders, ours, strict=True)] == list(zip(map(str, folders), licensee_keys(folders),
                                                                               strict=True))


def test_licence_links_are_never_followed_out_of_the_repository(tmp_path):
    outside = tmp_path / "other-repo"
    repository(outside, {"LICENSE": package_license("urllib3", "LICENSE.txt")})
    repo = repository(tmp_path / "repo", {})
    (repo / "LICENSE").symlink_to(outside / "LICENSE")
    (repo / "COPYING").symlink_to("/etc/passwd")
    assert license_texts(str(repo)) == {}
    (repo / "docs").mkdir()
    (repo / "docs" / "LICENSE.txt").write_text(package_license("urllib3", "LICENSE.txt"))
    (repo / "LICENSE.md").symlink_to(repo / "docs" / "LICENSE.txt")
    assert list(license_texts(str(repo))) == ["LICENSE.md"]
