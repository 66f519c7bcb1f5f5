"""Grading is honest: for every lab's every fill-in, the worked solution scores, and a blank, a wrong and a
cheating answer do not; the student edition holds no solution; nbgrader grades a folder into a CSV.

The per-lab test runs what nbgrader runs for a check cell (its source, then its hidden part), with
``COLLAB_GRADING=1``, in a namespace holding the lab's imports and the submitted fill-in: the worked solution
from the lab's ``{solution}`` block, the stub as the lab stores it, and the wrong and cheating answers of
``tests/grading_cases/<lab>.py``. The end-to-end tests run nbgrader itself (``scripts/course.py``) on one lab.
"""

from __future__ import annotations

import csv
import functools
import importlib
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import course  # noqa: E402

from collab_lib.exercises import grading  # noqa: E402

LABS = course.lab_paths()
GRADED = LABS  # every lab has fill-ins, the week-0 set-up check a warm-up one


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _imports(nb: dict) -> str:
    """The top-level imports of a lab's code cells, as one block of Python."""
    import ast

    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.parse(_python("".join(cell["source"]))).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.append(ast.unparse(node))
    return "\n".join(dict.fromkeys(lines))


def _solution_code(nb: dict, name: str) -> str:
    """The ```python block of the lab's {solution} blocks that defines ``name``."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for block in re.findall(r"```python\n(.*?)```", "".join(cell["source"]), re.S):
            if re.search(rf"^def {re.escape(name)}\(", block, re.M):
                return block
    raise AssertionError(f"no worked solution defines {name}: every fill-in needs one in a {{solution}} block")


def _cases(lab: str):
    try:
        return importlib.import_module(f"tests.grading_cases.{lab}")
    except ModuleNotFoundError:
        pytest.fail(f"tests/grading_cases/{lab}.py is missing: it holds a wrong and a cheating answer per fill-in")


def _grade(nb: dict, fill_in: str, check_source: str) -> None:
    """Run a fill-in and its check, visible and hidden part, as nbgrader does; raises what the check raises."""
    from collab_lib.seed import set_seed

    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    try:
        set_seed(0)
        ns: dict = {}
        exec(compile(_imports(nb), "<imports>", "exec"), ns)
        exec(compile(fill_in, "<fill-in>", "exec"), ns)
        exec(compile(check_source + "\n" + course.hidden_calls(check_source), "<check>", "exec"), ns)
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)


@pytest.mark.parametrize("path", GRADED, ids=[p.stem for p in GRADED])
def test_each_fill_in_scores_its_solution_and_nothing_else(path, monkeypatch):
    monkeypatch.setenv(grading.GRADING_ENV, "1")
    nb = _load(path)
    pairs = course.exercises(nb)
    assert pairs, f"{path.stem} has no fill-in (a cell tagged fill-in, then one tagged check)"
    cases = _cases(path.stem)
    solved = ""  # a later fill-in may call an earlier one, as in the notebook: those are the worked solutions
    for j, i in pairs:
        stub = "".join(nb["cells"][j]["source"])
        check = "".join(nb["cells"][i]["source"])
        assert isinstance(nb["cells"][i]["metadata"].get("points"), int), f"check cell {i} has no points"
        names = course.fill_in_names(stub)
        solution = "\n\n".join(_solution_code(nb, name) for name in names)
        _grade(nb, solved + solution, check)  # the worked solution scores
        with pytest.raises(AssertionError, match="not attempted"):
            _grade(nb, solved + stub, check)
        for name in names:
            assert name in cases.WRONG and name in cases.CHEAT, f"{path.stem}: no wrong or cheating {name}"
            with pytest.raises(AssertionError):
                _grade(nb, solved + cases.WRONG[name], check)
            # a cheat hands back the library's function, or (where no library function computes the answer)
            # types in the visible cases' answers, which the hidden cases catch
            with pytest.raises(AssertionError, match="calls the library's|^hidden"):
                _grade(nb, solved + cases.CHEAT[name], check)
        solved += solution + "\n\n"


@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_the_student_edition_of_each_lab_holds_no_solution(path):
    nb = _load(path)
    student = course.grading_source(nb, path.stem, hidden=False)
    code = "\n".join("".join(c["source"]) for c in student["cells"])
    assert "{solution}" not in code
    assert not [c for c in student["cells"] if "solution" in course.tags(c)]
    for j, i in course.exercises(student):
        for k in (j, i):
            assert student["cells"][k]["outputs"] == []
        for name in course.fill_in_names("".join(student["cells"][j]["source"])):
            body = _solution_code(nb, name).strip().splitlines()[1:]  # the solution's lines after its def
            assert not all(line in code for line in body if line.strip()), f"{name}'s solution is still there"
    # nothing else is lost: every other cell is kept with its outputs
    kept = [c for c in nb["cells"] if c["cell_type"] == "code" and not {"solution", "fill-in", "check"} & set(course.tags(c))]
    assert [c["outputs"] for c in kept] == [c["outputs"] for c in student["cells"] if c["cell_type"] == "code"
                                            and not {"fill-in", "check"} & set(course.tags(c))]


# --- the pieces ---------------------------------------------------------------------------------------------


def test_solution_blocks_are_removed_with_what_they_hold_and_nothing_else():
    text = ("Before.\n\n:::{exercise}\n:label: a\nDo it.\n:::\n\n:::{solution} a\n:class: dropdown\n\n```python\n"
            "x = 1\n```\n\nBecause.\n:::\n\n::::{solution} b\n:::{note}\nInner.\n:::\n::::\n\nAfter.")
    out = course.strip_solution_blocks(text)
    assert out == "Before.\n\n:::{exercise}\n:label: a\nDo it.\n:::\n\nAfter."
    with pytest.raises(ValueError, match="never closed"):
        course.strip_solution_blocks(":::{solution} a\nno end")


def test_hidden_calls_repeat_each_check_with_hidden_true():
    src = "from m import check_a, check_b\n\ncheck_a(f)\nx = 1\ncheck_b(g, n=2, hidden=False)"
    assert course.hidden_calls(src) == "check_a(f, hidden=True)\ncheck_b(g, n=2, hidden=True)"


def test_not_attempted_fails_only_when_grading(monkeypatch):
    monkeypatch.delenv(grading.GRADING_ENV, raising=False)
    assert grading.not_attempted("fill in f") == "not attempted yet: fill in f"
    monkeypatch.setenv(grading.GRADING_ENV, "0")
    assert grading.not_attempted("fill in f").startswith("not attempted")
    monkeypatch.setenv(grading.GRADING_ENV, "1")
    with pytest.raises(AssertionError, match="not attempted yet: fill in f.*scores 0"):
        grading.not_attempted("fill in f")


def _reference(x):
    return _helper(x) + 1


def _helper(x):
    return 2 * x


def test_learner_call_sees_the_reference_however_it_is_reached():
    def own(x):
        return 2 * x + 1

    assert grading.learner_call(own, 3, forbidden=(_reference,)) == 7
    assert grading.learner_call(lambda x: _helper(x) + 1, 3, forbidden=(_reference,)) == 7  # helpers stay free
    for cheat in (_reference, lambda x: _reference(x), functools.partial(_reference), lambda x: [_reference][0](x)):
        with pytest.raises(AssertionError, match="calls the library's .*_reference"):
            grading.learner_call(cheat, 3, forbidden=(_reference,))
    before = sys.getprofile()
    with pytest.raises(ZeroDivisionError):
        grading.learner_call(lambda x: 1 / 0, 3, forbidden=(_reference,))
    assert sys.getprofile() is before  # the watch ends with the call, whatever happens in it


def test_learner_call_watches_methods_and_classes():
    class Model:
        def __init__(self, k):
            self.k = k

        def predict(self, x):
            return self.k * x

    with pytest.raises(AssertionError, match="Model.predict"):
        grading.learner_call(lambda x: Model(2).predict(x), 1, forbidden=(Model.predict,))
    with pytest.raises(AssertionError, match="Model"):
        grading.learner_call(lambda x: Model(2), 1, forbidden=(Model,))
    with pytest.raises(TypeError, match="not a Python function"):
        grading.learner_call(len, [1], forbidden=(len,))


# --- nbgrader, end to end ------------------------------------------------------------------------------------

E2E_LAB = ROOT / "labs" / "02_hardware" / "roofline_llm.ipynb"  # one of the fastest labs


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    course.student(out, [E2E_LAB])
    return out


def test_make_student_writes_a_lab_without_solutions_that_nbgrader_can_grade(student_edition):
    nb = _load(student_edition / "labs" / E2E_LAB.parent.name / E2E_LAB.name)
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "{solution}" not in text and course.HIDDEN_BEGIN not in text
    checks = [c for c in nb["cells"] if "check" in course.tags(c)]
    assert checks and all(c["metadata"]["nbgrader"]["grade"] and c["metadata"]["nbgrader"]["locked"] for c in checks)
    assert [c["metadata"]["nbgrader"]["points"] for c in checks] == [c["metadata"]["points"] for c in checks]
    for name in ("environment.yml", "postBuild", "pyproject.toml", "collab_lib/exercises/grading.py"):
        assert (student_edition / name).exists(), name


def test_make_grade_scores_a_correct_a_blank_a_wrong_and_a_cheating_submission(student_edition, tmp_path):
    lab = _load(E2E_LAB)
    cases = _cases(E2E_LAB.stem)
    release = _load(student_edition / "labs" / E2E_LAB.parent.name / E2E_LAB.name)
    fills = [k for k, c in enumerate(release["cells"]) if "fill-in" in course.tags(c)]
    total = sum(c["metadata"]["points"] for c in release["cells"] if "check" in course.tags(c))

    def submit(who: str, answer) -> None:
        nb = json.loads(json.dumps(release))
        for k in fills:
            names = course.fill_in_names("".join(nb["cells"][k]["source"]))
            if answer is not None:
                nb["cells"][k]["source"] = "\n\n".join(answer(name) for name in names)
        (tmp_path / who).mkdir()
        (tmp_path / who / E2E_LAB.name).write_text(json.dumps(nb))

    submit("correct", lambda name: _solution_code(lab, name))
    submit("blank", None)
    submit("wrong", lambda name: cases.WRONG[name])
    submit("cheat", lambda name: cases.CHEAT[name])
    before = os.environ.get(grading.GRADING_ENV)
    course.grade(tmp_path, [E2E_LAB])
    assert os.environ.get(grading.GRADING_ENV) == before  # later kernels (nbval's) must not grade
    with (tmp_path / "grades.csv").open() as f:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}
    assert scores == {"correct": (total, total), "blank": (0, total), "wrong": (0, total), "cheat": (0, total)}
    with (tmp_path / "grades_by_check.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(fills) and {r["check"] for r in rows} == {
        c["metadata"]["nbgrader"]["grade_id"] for c in release["cells"] if "check" in course.tags(c)}


def test_make_grade_refuses_what_is_not_a_lab(tmp_path):
    (tmp_path / "someone").mkdir()
    (tmp_path / "someone" / "homework.ipynb").write_text("{}")
    with pytest.raises(SystemExit, match="not a lab of this book"):
        course.grade(tmp_path)
    with pytest.raises(SystemExit, match="no submissions"):
        course.grade(tmp_path / "someone")
