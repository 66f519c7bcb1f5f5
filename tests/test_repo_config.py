"""The repository's configuration files agree with each other, and every lab is complete and reachable."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted(p for p in (ROOT / "labs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*/index.md"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _requirement(line: str) -> tuple[str, str]:
    """('torch', '>=2.3') from 'torch>=2.3', with the name normalised as pip does."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", line)
    assert match, f"not a requirement: {line!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(3).replace(" ", "")


def test_environment_yml_lists_the_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("lab", "book", "dev", "scale"):
        wanted += project["optional-dependencies"][extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    listed = [line for line in pip_sections[0] if not line.startswith("-")]  # skip pip options
    assert sorted(map(_requirement, listed)) == sorted(map(_requirement, wanted))


def test_environment_yml_is_valid_for_binder():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python") for d in conda) and "pip" in conda
    post_build = ROOT / "postBuild"
    assert post_build.is_file() and post_build.stat().st_mode & 0o111, "postBuild must exist and be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()


def test_launch_buttons_point_at_the_repository():
    url = CONFIG["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    buttons = CONFIG["launch_buttons"]
    assert buttons["binderhub_url"].startswith("https://") and buttons["colab_url"].startswith("https://")


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in _toc_files(v)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def test_there_are_labs():
    assert LABS, "no notebooks found under labs/"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lab_is_in_the_toc(lab):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert str(lab.relative_to(ROOT).with_suffix("")) in _toc_files(toc)


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lab_is_stored_executed_without_errors(lab):
    nb = json.loads(lab.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unrun, f"code cells {unrun} have no stored output: nbval strict cannot check them"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "run the lab top to bottom in a fresh kernel (make execute)"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, "stored outputs contain an error"
    streams = [o for c in code for o in c["outputs"] if o.get("name") == "stderr"]
    assert not streams, f"stored outputs contain stderr (warnings?): {streams[:1]}"
    timed = [i for i, c in enumerate(code) if "execution" in c["metadata"]]
    assert not timed, (f"code cells {timed} store execution timestamps, which change on every run: execute with "
                       "`make execute` (nbconvert --ExecutePreprocessor.record_timing=False)")


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_code_cell_installs_on_colab_only(lab):
    nb = json.loads(lab.read_text())
    first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    guard = 'if "google.colab" in sys.modules:'
    assert "import sys" in first and guard in first, "the first code cell must guard its install on Colab"
    body = first.split(guard, 1)[1].splitlines()[1]
    assert body.startswith("    !pip install"), "the install must be inside the Colab guard"
    assert f"git+{CONFIG['repository']['url']}" in body, "the install must name the repository of _config.yml"
    # What IPython runs for it: a shell command, not the %pip magic, which always ends with "Note: you may
    # need to restart the kernel to use updated packages." (IPython.core.magics.packaging); no restart is
    # needed, since the cell imports nothing of the packages before installing them.
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(first.split(guard, 1)[0] + guard + "\n" + body + "\n")
    assert "get_ipython().system(" in python and "run_line_magic('pip'" not in python, python
    imported = re.findall(r"^\s*(?:import|from)\s+(\w+)", first.split(guard, 1)[0], re.M)
    assert set(imported) <= set(sys.stdlib_module_names), f"only the standard library before the install: {imported}"
    assert "set_seed(" in first, "the first code cell must set the seed"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nbval_markers_are_ones_nbval_recognises(lab):
    """nbval matches its markers as whole comment lines: '# NBVAL_IGNORE_OUTPUT (why)' is silently not one,
    and the cell is then compared after all."""
    from nbval.plugin import comment_markers

    nb = json.loads(lab.read_text())
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        lines = [ln.strip() for ln in "".join(cell["source"]).splitlines() if "NBVAL" in ln]
        for line in lines:
            assert any(re.fullmatch(rf"#\s*{pattern}", line) for pattern in comment_markers), (
                f"{line!r} is not an nbval marker nbval recognises; put the explanation on the next line")


def _check_functions() -> dict[str, str]:
    """Name -> module of every ``check_*`` function in a ``collab_lib.exercises`` module."""
    import importlib
    import pkgutil

    import collab_lib

    found = {}
    for info in pkgutil.walk_packages(collab_lib.__path__, collab_lib.__name__ + "."):
        if info.name.startswith("collab_lib.exercises."):
            module = importlib.import_module(info.name)
            found.update({name: info.name for name in vars(module) if name.startswith("check_")})
    return found


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lab_ends_with_a_check_from_the_library_that_the_tests_run(lab):
    """The must-hold of the labs: each ends with a check cell that tests the learner's code, with the check in
    the library (a check defined in a notebook is never run against a wrong answer) and called by the tests."""
    nb = json.loads(lab.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(re.search(r"^def check_\w+", src, re.M) for src in code), (
        "define the check in a collab_lib.exercises module, not in the lab")
    called = {name for src in code[-2:] for name in re.findall(r"^(check_\w+)\(", src, re.M)}
    assert called, "one of the last two code cells must call the lab's check_* function"
    library = _check_functions()
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name)
    for name in called:
        assert name in library, f"{name} is not a check_* function of a collab_lib.exercises module"
        assert any(re.search(rf"from {re.escape(library[name])} import[^)]*\b{name}\b", src) for src in code), (
            f"import {name} from {library[name]}")
        assert re.search(rf"\b{name}\(", tests_text), f"no test in tests/ runs {name}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.parent.name)
def test_chapter_has_three_exercises_with_hidden_solutions(chapter):
    text = chapter.read_text()
    labels = re.findall(r"^:{3,}\{exercise\}[ \t]*\n(?::label:[ \t]*(\S+))?", text, re.M)
    assert len(labels) >= 3, f"{len(labels)} exercises; every chapter needs at least 3"
    assert all(labels), "give every exercise a :label: for its solution to name"
    solutions = dict(re.findall(r"^:{3,}\{solution\}[ \t]+(\S+)[ \t]*\n((?::\w+:.*\n)*)", text, re.M))
    for label in labels:
        assert label in solutions, f"exercise {label} has no solution"
        assert ":class: dropdown" in solutions[label], f"the solution of {label} must be hidden (:class: dropdown)"


def _quoted_glue_keys() -> set[tuple[str, str]]:
    """(lab path relative to the repository, key) of every glued value a page of the book quotes."""
    quoted = set()
    for page in (ROOT / "book").rglob("*.md"):
        text = page.read_text()
        refs = re.findall(r"\{glue:\w+\}`([^`]+?\.ipynb)::(\w+)", text)
        refs += [(doc, key) for key, doc in
                 re.findall(r"^```\{glue:\w+\} (\w+)\n:doc: (\S+\.ipynb)", text, re.M)]
        for doc, key in refs:
            quoted.add((str((page.parent / doc).resolve().relative_to(ROOT)), key))
    return quoted


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_value_a_lab_glues_is_quoted_by_the_book(lab):
    """A glued value no page quotes is dead output; one the book quotes but the lab no longer stores fails the
    book build (-W), so only this direction needs a test."""
    nb = json.loads(lab.read_text())
    glued = {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] if c["cell_type"] == "code"
             for o in c["outputs"] if "scrapbook" in o.get("metadata", {})}
    path = str(lab.relative_to(ROOT))
    # an exercise's solution in the lab quotes what its folded solution cell computed
    own = {key for c in nb["cells"] if c["cell_type"] == "markdown"
           for key in re.findall(r"\{glue:\w+\}`(\w+)(?::[^`]*)?`", "".join(c["source"]))}
    unquoted = sorted(key for key in glued if (path, key) not in _quoted_glue_keys() and key not in own)
    assert not unquoted, f"glued but quoted by no page of the book: {unquoted}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_lab_states_its_claims_and_never_stops_on_one(lab):
    """A statement the text makes about a lab's results is a ``claim(...)`` (collab_lib.claims): a note in a
    learner's notebook, an error under the tests. An ``assert`` would stop the learner's lab instead."""
    nb = json.loads(lab.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    asserts = [line.strip() for src in code for line in src.splitlines() if re.match(r"\s*assert\b", line)]
    assert not asserts, f"use collab_lib.claims.claim instead of assert: {asserts[:2]}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_known_tags_mark_a_labs_cells(lab):
    """A misspelt ``last-digit`` tag would silently leave a cell to exact comparison, or the reverse; the
    exercise tags (``fill-in``, ``check``, ``solution``, ``hide-cell``) mark the cells the student edition and
    the autograder are generated from."""
    from nbval.plugin import metadata_tags

    from tests.nbval_compare import TAG

    nb = json.loads(lab.read_text())
    # fill-in, check, solution: the exercise cells the student edition and the autograder are built from;
    # hide-cell: Jupyter Book folds the cell
    known = set(metadata_tags) | {TAG, "fill-in", "check", "solution", "hide-cell"}
    for cell in nb["cells"]:
        unknown = set(cell.get("metadata", {}).get("tags", [])) - known
        assert not unknown, f"unknown cell tags {sorted(unknown)}; known: {sorted(known)}"


def test_method_packages_hold_methods_and_every_check_lives_in_exercises():
    """A check is an exercise, not a method: none in the method packages, all in ``collab_lib.exercises``."""
    stray = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "collab_lib").rglob("checks.py"))
    assert not stray, f"move these into collab_lib/exercises/: {stray}"
    import importlib
    import inspect
    import pkgutil

    import collab_lib

    for info in pkgutil.walk_packages(collab_lib.__path__, collab_lib.__name__ + "."):
        if info.name.startswith("collab_lib.exercises") or info.name.endswith("flower_app"):
            continue
        module = importlib.import_module(info.name)
        checks = [n for n, obj in vars(module).items() if n.startswith("check_") and inspect.isfunction(obj)
                  and obj.__module__ == module.__name__]
        assert not checks, f"{info.name} defines lab checks {checks}: they belong in collab_lib.exercises"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_lab_has_an_instrument_stored_as_a_slider_figure_without_widget_views(lab):
    """Every lab has at least one instrument (collab_lib.viz.instrument), stored executed as its static figure:
    a plotly figure with sliders and one frame per grid point, and no widget view (a pointer to a kernel's
    model, which opens as "model not found"; scripts/strip_widgets.py) and no saved widget state. No lab
    writes widget plumbing of its own."""
    from scripts.strip_widgets import WIDGET_VIEW

    nb = json.loads(lab.read_text())
    assert "widgets" not in nb.get("metadata", {}), "saved widget state: run scripts/strip_widgets.py"
    instruments = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        assert not re.search(r"\bipywidgets\b|FigureWidget", src), "a lab's controls go through viz.instrument"
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert WIDGET_VIEW not in data, "a stored widget view: run scripts/strip_widgets.py"
            fig = data.get("application/vnd.plotly.v1+json")
            if fig and "instrument" in (fig.get("layout", {}).get("meta") or {}):
                meta = fig["layout"]["meta"]["instrument"]
                grid = 1
                for values in meta["values"]:
                    grid *= len(values)
                assert len(fig["frames"]) == grid, "one frame per grid point"
                assert len(fig["layout"]["sliders"]) == len(meta["params"]), "one slider per parameter"
                instruments += 1
    assert instruments >= 1, "no instrument: give the lab's key parameters controls with viz.instrument"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_lab_asks_for_a_prediction_before_it_reveals(lab):
    """At least one guess is a control (collab_lib.viz.predict) stored as its static form: the measured value
    sits behind the reveal, not in plain view."""
    nb = json.loads(lab.read_text())
    forms = [
        "".join(html) if isinstance(html, list) else html
        for cell in nb["cells"] if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
        if (html := output.get("data", {}).get("text/html")) and 'class="collab-predict"' in "".join(html)
    ]
    assert forms, "no prediction: ask for a guess with viz.predict before the lab shows the answer"
    for form in forms:
        shown, hidden = form.split("<details", 1)
        assert "This run measured" in hidden and "This run measured" not in shown


@pytest.mark.parametrize("lab", LABS, ids=lambda p: str(p.relative_to(ROOT)))
def test_hidden_outputs_are_stored_as_jupyterlab_writes_them(lab):
    """JupyterLab mirrors ``jupyter.outputs_hidden`` into the legacy ``collapsed`` field when it shows a cell;
    a lab stored without it shows as modified as soon as its solution cells are drawn."""
    nb = json.loads(lab.read_text())
    for i, cell in enumerate(nb["cells"]):
        hidden = cell["metadata"].get("jupyter", {}).get("outputs_hidden", False)
        if cell["cell_type"] == "code" and hidden:
            assert cell["metadata"].get("collapsed") is True, f"cell {i}: outputs_hidden without collapsed: true"
