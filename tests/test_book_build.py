"""The book build fails loudly: a lab cell that raises, or a Sphinx warning, gives a non-zero exit.

Each case builds a two-page book in a temporary folder with the repository's own `_config.yml`, so a change
to the configuration that silences failures makes these tests fail.
"""

import json
import shutil
from pathlib import Path

import pytest

from tests.book_build import ROOT, build_book


def _notebook(source: str) -> str:
    return json.dumps({
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# A lab"},
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 4,
    })


@pytest.fixture
def tiny_book(tmp_path: Path):
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("_ext", "_static"):
        shutil.copytree(ROOT / "book" / folder, tmp_path / "book" / folder)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: lab\n")
    (tmp_path / "index.md").write_text("# Index\n\nSee {cite:t}`kang2017neurosurgeon`.\n\n```{bibliography}\n```\n")

    def make(cell_source: str, page_extra: str = "") -> Path:
        (tmp_path / "lab.ipynb").write_text(_notebook(cell_source))
        if page_extra:
            (tmp_path / "index.md").write_text((tmp_path / "index.md").read_text() + page_extra)
        return tmp_path

    return make


def test_a_good_tiny_book_builds(tiny_book):
    proc = build_book(tiny_book("print(1 + 1)"), execute=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_a_raising_cell_fails_the_build(tiny_book):
    proc = build_book(tiny_book("raise RuntimeError('lab is broken')"), execute=True)
    assert proc.returncode != 0
    assert "lab is broken" in proc.stdout + proc.stderr


def test_a_sphinx_warning_fails_the_build(tiny_book):
    proc = build_book(tiny_book("print(1)", page_extra="\nA broken link: {ref}`no-such-label`.\n"), execute=True)
    assert proc.returncode != 0
    assert "no-such-label" in proc.stdout + proc.stderr
