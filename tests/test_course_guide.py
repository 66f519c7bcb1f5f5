"""The course guide agrees with the measured lab times, and its instructor's kit is complete."""

import re

from scripts.course_guide import GUIDE, ROOT, lab_times, table_run_times_s, week_run_time_s, weeks

APPENDIX = ROOT / "book" / "appendix"


def test_six_weeks_each_with_labs_objectives_and_graded_exercises():
    found = weeks()
    assert [w.number for w in found] == [1, 2, 3, 4, 5, 6]
    for w in found:
        assert w.chapters and w.labs and w.objectives and w.graded, w
        for lab in w.labs:
            assert (ROOT / "labs" / f"{lab}.ipynb").is_file(), lab


def test_the_tables_run_times_are_the_sums_of_the_measured_lab_times():
    """After `python benchmarks/lab_times.py --write`, `python scripts/course_guide.py` prints the new sums."""
    times = lab_times()
    for w in weeks():
        missing = [lab for lab in w.labs if lab not in times]
        assert not missing, f"week {w.number}: {missing} not in {APPENDIX / '_lab_times.md'}"
    stated = table_run_times_s()
    assert stated == {w.number: week_run_time_s(w, times) for w in weeks()}


def test_the_instructors_kit_links_its_parts():
    text = GUIDE.read_text()
    kit = text.split("## Instructor's kit", 1)[1].split("\n## ", 1)[0]
    for part in ("make slides", "{doc}`exercise_variants`", "{doc}`project_rubric`",
                 "../../labs/00_setup/check_your_setup"):
        assert part in kit, part
    assert "## Student edition and grading" in text


def test_the_rubric_points_add_up():
    """Each criterion's top level gives its points; the proposal is worth 20, the project 80."""
    text = (APPENDIX / "project_rubric.md").read_text()
    totals = []
    for section in re.split(r"^## ", text, flags=re.M)[1:3]:
        rows = [r for r in section.splitlines() if r.startswith("| **")]
        points = [int(re.search(r"\((\d+)\)", r).group(1)) for r in rows]
        for row, p in zip(rows, points):
            levels = [int(n) for n in re.findall(r"\| \*\*(\d+)\*\*", row)]
            assert levels[0] == p and levels == sorted(levels, reverse=True) and levels[-1] == 0, row
        totals.append(sum(points))
    assert totals == [20, 80]
