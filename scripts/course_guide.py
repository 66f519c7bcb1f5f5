"""The course guide's weeks as data: what `scripts/slides.py` builds decks from and the tests check.

``weeks()`` reads ``book/appendix/course_guide.md``: each ``## Week N: title`` section gives its chapters
(the "Read" line), its labs (the ``{doc}`` links of the "Labs" line), its objectives and its graded exercises.
``lab_times()`` reads the measured run times of ``book/appendix/_lab_times.md`` (``benchmarks/lab_times.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "book" / "appendix" / "course_guide.md"
LAB_TIMES = ROOT / "book" / "appendix" / "_lab_times.md"


@dataclass(frozen=True)
class Week:
    number: int
    title: str
    chapters: tuple[int, ...]       # chapter numbers, as in book/<NN>_*/index.md
    labs: tuple[str, ...]           # lab paths under labs/, without .ipynb: "03_system/early_exit"
    objectives: str                 # the paragraph after **Objectives.**, MyST markup left in
    graded: tuple[str, ...]         # exercise labels


def weeks(text: str | None = None) -> list[Week]:
    """The weeks of the course guide, in order."""
    text = GUIDE.read_text() if text is None else text
    out = []
    for match in re.finditer(r"^## Week (\d+): (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S):
        number, title, body = int(match.group(1)), match.group(2).strip(), match.group(3)
        read = re.search(r"^\*\*Read\*\* (.*?)\(", body, re.M | re.S).group(1)
        labs_par = re.search(r"^\*\*Labs\*\*(.*?)(?:\n\n|\Z)", body, re.M | re.S).group(1)
        objectives = re.search(r"^\*\*Objectives\.\*\* (.*?)(?:\n\n|\Z)", body, re.M | re.S).group(1)
        graded = re.search(r"^\*\*Graded\*\*(.*?)(?:\n\n|\Z)", body, re.M | re.S).group(1)
        out.append(Week(
            number=number, title=title,
            chapters=tuple(int(n) for n in re.findall(r"chapter (\d+)", read)),
            labs=tuple(re.findall(r"\{doc\}`[^`<]*<\.\./\.\./labs/([\w/]+)>`", labs_par)),
            objectives=" ".join(objectives.split()),
            graded=tuple(re.findall(r"\{ref\}`(ex-[\w-]+)`", graded)),
        ))
    return out


def lab_times(text: str | None = None) -> dict[str, int]:
    """Lab path (``"03_system/early_exit"``) -> measured seconds, as the table prints them."""
    text = LAB_TIMES.read_text() if text is None else text
    return {name: int(s) for name, s in re.findall(r"^\| `([\w/]+)` \| (\d+) \|$", text, re.M)}


def week_run_time_s(week: Week, times: dict[str, int] | None = None) -> int:
    """The summed measured run time of the week's labs."""
    times = lab_times() if times is None else times
    return sum(times[lab] for lab in week.labs)


def table_run_times_s(text: str | None = None) -> dict[int, int]:
    """Week -> the seconds the guide's table states in its "labs' run time" column."""
    text = GUIDE.read_text() if text is None else text
    header, _, *rows = [ln for ln in text.splitlines() if ln.startswith("| ")][:8]
    col = [c.strip() for c in header.strip("|").split("|")].index("labs' run time")
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0].isdigit():
            out[int(cells[0])] = int(cells[col].removesuffix(" s"))
    return out


if __name__ == "__main__":
    times = lab_times()
    for w in weeks():
        print(f"week {w.number}: {week_run_time_s(w, times):4d} s  {', '.join(w.labs)}")
