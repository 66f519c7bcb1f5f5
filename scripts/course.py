"""The student edition of the labs, and grading submitted labs with nbgrader.

The repository is the instructor edition: every lab carries its worked solutions (``{solution}`` blocks in
its Markdown, and code cells tagged ``solution`` that compute their results). A lab's fill-ins are code
cells tagged ``fill-in`` (a stub returning ``None``), each followed by a code cell tagged ``check``, whose
metadata gives its ``points`` and whose source calls a check of :mod:`collab_lib.exercises`.

``python scripts/course.py student OUT`` writes the student edition to ``OUT`` (``make student``:
``_build/student``): the repository's files that a course needs to run the labs on Binder or Colab, with
every lab's solutions removed, the outputs of its fill-ins and checks cleared, and everything else (text,
figures, instruments) kept. It is what ``nbgrader generate_assignment`` makes of each lab's grading source
(below), so its check cells carry the nbgrader metadata that grading finds them by.

``python scripts/course.py grade SUBMISSIONS`` (``make grade SUBMISSIONS=...``) grades a folder of submitted
labs, ``SUBMISSIONS/<student id>/<lab>.ipynb`` (``<lab>`` is a lab's file name, e.g. ``tradeoff.ipynb``),
with ``nbgrader autograde`` and writes ``SUBMISSIONS/grades.csv`` (``nbgrader export``: one row per student
and lab) and ``SUBMISSIONS/grades_by_check.csv`` (one row per student, lab and check). nbgrader puts each
check cell back as it is in the grading source, which adds the hidden part: the same check with
``hidden=True``, on other seeds and inputs. It runs with ``COLLAB_GRADING=1``, so a fill-in left blank scores
0, and a fill-in that hands back the library's function fails its check (:mod:`collab_lib.exercises.grading`).
Each submitted notebook is run from top to bottom, as a learner would: about the lab's run time each.
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
# What a course's copy of the repository needs for the labs to run on Binder (environment.yml, postBuild,
# the library) and on Colab (the library, installed by each lab's first cell from the repository's URL).
STUDENT_FILES = ("README.md", "pyproject.toml", "environment.yml", "postBuild", "collab_lib", "data")
COURSE_ID = "device-cloud-collab"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution\}")


def lab_paths() -> list[Path]:
    return sorted(LABS.glob("*/*.ipynb"))


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def strip_solution_blocks(markdown: str) -> str:
    """``markdown`` without its ``{solution}`` directives (colon or backtick fences, with what they hold)."""
    out, fence = [], None
    for line in markdown.splitlines(keepends=True):
        if fence is None:
            m = _OPEN.match(line)
            if m:
                fence = m.group("fence")
                continue
            out.append(line)
        elif line.strip() == fence:
            fence = None
    if fence is not None:
        raise ValueError(f"a {{solution}} block opened with {fence} is never closed")
    text = "".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def check_calls(source: str) -> list[ast.Call]:
    """The top-level ``check_*(...)`` calls of a check cell's source."""
    calls = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name.startswith("check_"):
                calls.append(node.value)
    return calls


def hidden_calls(source: str) -> str:
    """The hidden part of a check cell: each of its ``check_*(...)`` calls again with ``hidden=True``."""
    lines = []
    for call in check_calls(source):
        call = copy.deepcopy(call)
        call.keywords = [k for k in call.keywords if k.arg != "hidden"]
        call.keywords.append(ast.keyword(arg="hidden", value=ast.Constant(True)))
        lines.append(ast.unparse(call))
    return "\n".join(lines)


def exercises(nb: dict) -> list[tuple[int, int]]:
    """``(fill-in index, check index)`` pairs of a notebook, each check right after its fill-in."""
    cells, pairs = nb["cells"], []
    for i, cell in enumerate(cells):
        if "check" in tags(cell):
            j = i - 1
            if j < 0 or "fill-in" not in tags(cells[j]):
                raise ValueError(f"cell {i} is tagged check but the cell before it is not tagged fill-in")
            if not check_calls("".join(cell["source"])):
                raise ValueError(f"check cell {i} calls no check_* function")
            pairs.append((j, i))
    return pairs


def fill_in_names(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def grading_source(nb: dict, lab: str, hidden: bool = True) -> dict:
    """A lab as nbgrader's source: solutions removed, fill-in and check outputs cleared, check cells graded.

    Each check cell becomes an nbgrader grade cell (locked, with its ``points`` and a ``grade_id`` named after
    the function it checks) whose hidden tests, when ``hidden``, call its checks again with ``hidden=True``.
    """
    nb = copy.deepcopy(nb)
    pairs = exercises(nb)  # none in a lab that grades nothing, as the week-0 set-up check
    for j, i in pairs:
        fill, check = nb["cells"][j], nb["cells"][i]
        names = fill_in_names("".join(fill["source"]))
        if not names:
            raise ValueError(f"{lab}: the fill-in cell {j} defines no function")
        points = check["metadata"].get("points")
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ValueError(f"{lab}: check cell {i} needs an integer 'points' >= 1 in its metadata, has {points!r}")
        for cell in (fill, check):
            cell["outputs"], cell["execution_count"] = [], None
        source = "".join(check["source"]).rstrip("\n")
        if hidden:
            source += f"\n{HIDDEN_BEGIN}\n{hidden_calls(source)}\n{HIDDEN_END}"
        check["source"] = source
        check["metadata"]["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": points,
                                         "grade_id": f"{lab}-{'-'.join(names)}", "schema_version": 3}
    cells = []
    for cell in nb["cells"]:
        if "solution" in tags(cell):
            continue
        if cell["cell_type"] == "markdown":
            text = strip_solution_blocks("".join(cell["source"]))
            if not text.strip():
                continue
            cell["source"] = text
        cells.append(cell)
    nb["cells"] = cells
    return nb


# --- nbgrader ---------------------------------------------------------------------------------------------


def _course(root: Path, labs: list[Path]) -> None:
    """An nbgrader course in ``root``: every lab in ``labs`` as an assignment of its own, generated."""
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.ClearOutput.enabled = False  # a lab's figures stay; fill-in and check outputs are already cleared\n"
        "c.Execute.timeout = 600\n"
        "c.Execute.interrupt_on_timeout = True\n")
    for path in labs:
        lab = path.stem
        nb = grading_source(json.loads(path.read_text()), lab)
        dest = root / "source" / lab / path.name
        dest.parent.mkdir(parents=True)
        dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        _nbgrader(root, "generate_assignment", lab, "--force")


def _nbgrader(root: Path, *args: str, grading: bool = False) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs `alembic` (its database's migrations) from PATH: the one installed beside this Python.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if grading:  # the kernels nbgrader starts inherit it; this process's own environment stays as it was
        env["COLLAB_GRADING"] = "1"
    run = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"{' '.join(cmd[2:])} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")


def student(out: Path, labs: list[Path] | None = None) -> list[Path]:
    """Write the student edition to ``out``; returns the notebooks written."""
    labs = labs or lab_paths()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in STUDENT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, out / name)
    shutil.copy2(LABS / "ruff.toml", (out / "labs").mkdir() or out / "labs" / "ruff.toml")
    written = []
    graded = [p for p in labs if exercises(json.loads(p.read_text()))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _course(root, graded)
        for path in labs:
            dest = out / "labs" / path.parent.name / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path in graded:
                nb = json.loads((root / "release" / path.stem / path.name).read_text())
            else:
                nb = grading_source(json.loads(path.read_text()), path.stem)
            dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            written.append(dest)
    return written


def grade(submissions: Path, labs: list[Path] | None = None) -> Path:
    """Grade ``submissions/<student>/<lab>.ipynb``; returns the path of ``grades.csv`` (written beside them)."""
    by_name = {p.name: p for p in (labs or lab_paths()) if exercises(json.loads(p.read_text()))}
    found: dict[str, list[tuple[str, Path]]] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for nb in sorted(student_dir.glob("*.ipynb")):
            if nb.name not in by_name:
                raise SystemExit(f"{nb}: not a lab of this book (expected one of the names in labs/*/, "
                                 f"e.g. tradeoff.ipynb)")
            found.setdefault(nb.name, []).append((student_dir.name, nb))
    if not found:
        raise SystemExit(f"no submissions in {submissions}: expected {submissions}/<student id>/<lab>.ipynb")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _course(root, [by_name[name] for name in sorted(found)])
        for name, entries in sorted(found.items()):
            lab = Path(name).stem
            for sid, nb in entries:
                dest = root / "submitted" / sid / lab / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(nb, dest)
            _nbgrader(root, "autograde", lab, "--create", "--force", grading=True)
        _nbgrader(root, "export", "--to", str(root / "grades.csv"))
        shutil.copy2(root / "grades.csv", submissions / "grades.csv")
        _by_check(root, sorted(found), submissions / "grades_by_check.csv")
    return submissions / "grades.csv"


def _by_check(root: Path, lab_names: list[str], out: Path) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb, out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "lab", "check", "score", "max_score"])
        for name in lab_names:
            lab = Path(name).stem
            for sub in gb.assignment_submissions(lab):
                for nb in sub.notebooks:
                    for g in sorted(nb.grades, key=lambda g: g.name):
                        w.writerow([sub.student.id, lab, g.name, g.score, g.max_score])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write the student edition")
    s.add_argument("out", type=Path)
    g = sub.add_parser("grade", help="grade SUBMISSIONS/<student>/<lab>.ipynb into SUBMISSIONS/grades.csv")
    g.add_argument("submissions", type=Path)
    args = parser.parse_args(argv)
    if args.command == "student":
        written = student(args.out)
        print(f"student edition: {len(written)} labs in {args.out}")
    else:
        if not args.submissions.is_dir():
            raise SystemExit(f"{args.submissions} is not a folder")
        path = grade(args.submissions)
        print(f"grades: {path} and {path.with_name('grades_by_check.csv')}")


if __name__ == "__main__":
    main()
