"""One slide deck per course week, from the course guide, the chapters and the labs' stored figures.

``make slides`` runs this script; it writes ``_build/slides/week-<N>.html`` for every week of
``book/appendix/course_guide.md`` and copies next to them the plotly.js that the installed plotly package
ships, so that the decks work offline. A deck has a title slide, the week's objectives, for each chapter an
overview slide and one slide per section (its heading and opening sentences, and the figure of the lab the
section points to, if any), one slide per lab with the lab's instrument figure from its stored outputs, and a
closing slide with the graded exercises.

The decks are plain HTML, CSS and JavaScript: the arrow keys, Page Up/Down, space, Home and End (or a swipe)
move between slides, and the address's ``#N`` names the slide shown.

Run: python scripts/slides.py [--out DIR] [WEEK ...]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import plotly

if __package__:
    from scripts.course_guide import ROOT, Week, lab_times, weeks
else:  # run as `python scripts/slides.py`: scripts/ is on the path, the repository root is not
    from course_guide import ROOT, Week, lab_times, weeks

OUT = ROOT / "_build" / "slides"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
MAX_SECTIONS = 10     # slides per chapter beyond its overview
SKIP_SECTIONS = {"Labs", "Exercises"}


@dataclass
class Slide:
    title: str
    kind: str                                  # "title", "text", "figure"
    bullets: list[str] = field(default_factory=list)   # HTML
    figure: dict | None = None                 # plotly JSON
    note: str = ""                             # HTML, under the figure


# --- MyST to slide text -------------------------------------------------------------------------------------

_TEX = {r"\times": "×", r"\le": "≤", r"\ge": "≥", r"\approx": "≈", r"\alpha": "α", r"\gamma": "γ", r"\mu": "μ",
        r"\rho": "ρ", r"\tau": "τ", r"\eta": "η", r"\sum": "Σ", r"\cdot": "·", r"\infty": "∞", r"\to": "→",
        r"\ldots": "…", r"\dots": "…", r"\,": " ", r"\;": " ", r"\%": "%"}


def _math(tex: str) -> str:
    for k, v in _TEX.items():
        tex = tex.replace(k, v)
    tex = re.sub(r"\\(?:text|mathrm|mathbf|operatorname)\{([^{}]*)\}", r"{\1}", tex)
    tex = re.sub(r"_\{([^{}]*)\}|_(\w)", lambda m: f"<sub>{m.group(1) or m.group(2)}</sub>", tex)
    tex = re.sub(r"\^\{([^{}]*)\}|\^(\w)", lambda m: f"<sup>{m.group(1) or m.group(2)}</sup>", tex)
    return f'<span class="math">{tex.replace("{", "").replace("}", "")}</span>'


def _author_year(key: str) -> str:
    """"Williams (2009)" from the citation key williams2009roofline."""
    m = re.match(r"([a-z]+)(\d{4})", key)
    return f"{m.group(1).capitalize()} ({m.group(2)})" if m else key


def inline(text: str) -> str:
    """MyST inline markup as HTML: roles reduced to their text, citations dropped, code and math kept."""
    text = re.sub(r"\s*\{cite:p\}`[^`]*`", "", text)
    text = re.sub(r"\{cite:t\}`([^`]*)`", lambda m: _author_year(m.group(1).split(",")[0]), text)
    text = re.sub(r"\{(?:doc|ref|numref)\}`([^`<]*?)\s*<[^`]*>`", r"\1", text)
    text = re.sub(r"\{(?:doc|ref|numref)\}`([^`]*)`", r"\1", text)
    text = re.sub(r"\{py:\w+\}`~?([^`]*)`", r"`\1`", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)            # links: their text only (no URL)
    parts = re.split(r"(`[^`]*`|\$[^$]+\$)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        elif part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(_math(html.escape(part[1:-1], quote=False)))
        else:
            p = html.escape(part, quote=False)
            p = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", p)
            p = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", p)
            out.append(p)
    return "".join(out).strip()


def sentences(paragraph: str, n: int) -> list[str]:
    """The first ``n`` sentences of a paragraph (a full stop followed by a capital starts a new one)."""
    flat = " ".join(paragraph.split())
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", flat)
    return [p for p in parts if p][:n]


_NOT_PROSE = re.compile(r"(\||#|\(\S+\)=|- |\* |\+ |\d+\. |<|>)")


def paragraphs(body: str) -> list[str]:
    """The prose paragraphs of a section, without directives, code, display math, tables, lists, headings
    and labels: a block that starts with one of those is skipped up to its end."""
    out, current, skip, fence = [], [], False, None

    def flush():
        if current and not skip:
            out.append(" ".join(current))
        current.clear()

    for line in body.splitlines() + [""]:
        stripped = line.strip()
        if fence:                                       # inside a fenced block or display math
            if stripped.startswith(fence) and (fence == "$$" or stripped == stripped[0] * len(stripped)):
                fence = None
            elif fence == "$$" and stripped.endswith("$$") and len(stripped) > 2:
                fence = None
            continue
        marker = re.match(r"`{3,}|:{3,}|\$\$", stripped)
        if marker:
            flush()
            one_line_math = marker.group(0) == "$$" and stripped.endswith("$$") and len(stripped) > 4
            fence = None if one_line_math else marker.group(0)
            continue
        if not stripped:
            flush()
            skip = False
        elif not current and not skip and _NOT_PROSE.match(stripped):
            skip = True                                 # a list, table, heading...: up to the next blank line
        elif not skip:
            if _NOT_PROSE.match(stripped) and re.match(r"(- |\* |\d+\. )", stripped):
                flush()                                 # a list starts after a paragraph's last line
                skip = True
                continue
            current.append(stripped)
    return out


# --- the sources --------------------------------------------------------------------------------------------

def chapter_file(number: int) -> Path:
    return next((ROOT / "book").glob(f"{number:02d}_*/index.md"))


def lab_figures(lab: str) -> tuple[str, str, list[dict], dict | None]:
    """(title, first sentence, static figures, instrument figure) of ``labs/<lab>.ipynb``'s stored outputs."""
    nb = json.loads((ROOT / "labs" / f"{lab}.ipynb").read_text())
    md = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    title = re.search(r"^# (.+)$", md[0], re.M).group(1).strip() if md else lab
    intro = paragraphs(md[0].split("\n", 1)[1]) if md else []
    static, instrument = [], None
    for cell in nb["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            fig = output.get("data", {}).get(PLOTLY_MIME)
            if not fig:
                continue
            if "instrument" in ((fig.get("layout") or {}).get("meta") or {}):
                instrument = instrument or fig
            else:
                static.append(fig)
    first = sentences(intro[0], 1)[0] if intro else ""
    return title, first, static, instrument


def chapter_slides(number: int, figures_of) -> list[Slide]:
    text = chapter_file(number).read_text()
    title = re.search(r"^# (.+)$", text, re.M).group(1).strip()
    sections = re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    sections = [(h.strip(), b) for h, b in sections if h.strip() not in SKIP_SECTIONS]
    intro = paragraphs(text.split("\n", 1)[1].split("\n## ", 1)[0])
    overview = Slide(f"Chapter {number}: {title}", "text",
                     [inline(s) for s in sentences(intro[0], 2)] if intro else [])
    overview.note = "<ol class='sections'>" + "".join(f"<li>{inline(h)}</li>" for h, _ in sections) + "</ol>"
    slides = [overview]
    for heading, body in sections[:MAX_SECTIONS]:
        paras = paragraphs(body)
        bullets = [inline(s) for s in sentences(paras[0], 2)] if paras else []
        if len(paras) > 1:
            bullets += [inline(s) for s in sentences(paras[1], 1)]
        slide = Slide(heading, "text", bullets)
        linked = re.findall(r"\{doc\}`[^`]*<\.\./\.\./labs/([\w/]+)>`", body)
        for lab in linked:
            static = figures_of(lab)[2]
            if static:
                slide.kind, slide.figure = "figure", static[0]
                slide.bullets = bullets[:2]
                slide.note = f"Figure from the lab <em>{html.escape(figures_of(lab)[0])}</em>."
                break
        if slide.bullets or slide.figure:
            slides.append(slide)
    return [_with_inline_title(s) for s in slides]


def _with_inline_title(slide: Slide) -> Slide:
    slide.title = inline(slide.title)
    return slide


def week_slides(week: Week, times: dict[str, int]) -> list[Slide]:
    cache: dict[str, tuple] = {}

    def figures_of(lab):
        if lab not in cache:
            cache[lab] = lab_figures(lab)
        return cache[lab]

    run_s = sum(times.get(lab, 0) for lab in week.labs)
    slides = [Slide(f"Week {week.number}: {inline(week.title)}", "title", [
        "Chapters " + ", ".join(map(str, week.chapters)) if len(week.chapters) > 1 else f"Chapter {week.chapters[0]}",
        f"{len(week.labs)} labs, {run_s} s of run time in all",
        "Device–cloud collaborative learning: course module"])]
    objectives = re.sub(r"^After this week a student can ", "", week.objectives)
    items = [s.strip().rstrip(".") for s in re.split(r";\s*(?:and\s+)?", objectives) if s.strip()]
    slides.append(Slide("Objectives", "text", [inline(i[0].upper() + i[1:]) for i in items]))
    for number in week.chapters:
        slides += chapter_slides(number, figures_of)
    for lab in week.labs:
        title, first, static, instrument = figures_of(lab)
        fig = instrument or (static[0] if static else None)
        slide = Slide(f"Lab: {inline(title)}", "figure" if fig else "text", [inline(first)] if first else [],
                      figure=fig)
        slide.note = (f"<code>labs/{html.escape(lab)}.ipynb</code>, {times[lab]} s top to bottom"
                      if lab in times else f"<code>labs/{html.escape(lab)}.ipynb</code>")
        if instrument:
            slide.note += "; move the sliders: every position is a stored run"
        slides.append(slide)
    slides.append(Slide("Graded this week", "text",
                        [f"<code>{html.escape(label)}</code>" for label in week.graded]
                        + ["Worked solutions are in the book; variants with new numbers are on the instructor's "
                           "page <em>Exercise variants</em>."]))
    return slides


# --- HTML ---------------------------------------------------------------------------------------------------

CSS = """
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; background: #1f2328; font-family: Helvetica, Arial, sans-serif; }
.slide { position: fixed; inset: 0; visibility: hidden; background: #fff; color: #1f2328; display: flex;
  flex-direction: column; padding: clamp(12px, 3.5vh, 40px) clamp(14px, 5vw, 72px); overflow: hidden; }
.slide.current { visibility: visible; }
.slide h1 { font-size: clamp(20px, min(4.6vw, 6.2vh), 46px); margin: 0 0 .5em; color: #0072B2; line-height: 1.15; }
.slide.title { justify-content: center; background: #0072B2; color: #fff; }
.slide.title h1 { color: #fff; font-size: clamp(26px, min(6vw, 8vh), 64px); }
.slide ul { margin: 0; padding-left: 1.2em; font-size: clamp(15px, min(2.6vw, 3.6vh), 28px); line-height: 1.4; }
.slide.title ul { list-style: none; padding: 0; }
.slide li { margin: .25em 0; }
.slide.figure ul { font-size: clamp(13px, min(2vw, 2.8vh), 22px); }
.figure-box { flex: 1 1 auto; min-height: 0; position: relative; margin-top: .4em; }
.figure-box > .plotly-graph-div { position: absolute; inset: 0; }
.note { font-size: clamp(12px, min(1.8vw, 2.4vh), 18px); color: #57606a; margin-top: .4em; }
ol.sections { font-size: clamp(14px, min(2.2vw, 3vh), 24px); line-height: 1.35; color: #1f2328; }
code { font-family: Menlo, Consolas, monospace; font-size: .9em; background: #f0f3f6; padding: 0 .2em; }
.slide.title code { background: transparent; }
.math { font-family: "Times New Roman", serif; font-style: italic; }
.counter { position: fixed; right: 12px; bottom: 8px; font-size: 13px; color: #8c959f; z-index: 2; }
@media (max-aspect-ratio: 3/4) { .slide { padding: 14px; } .figure-box { min-height: 55vh; } }
"""

JS = """
(function () {
  "use strict";
  const slides = Array.from(document.querySelectorAll(".slide"));
  const counter = document.querySelector(".counter");
  const drawn = new Set();
  const NOW = { mode: "immediate", frame: { duration: 0, redraw: true }, transition: { duration: 0 } };
  let current = 0;

  // An instrument's sliders each name a parameter and do nothing themselves (method "skip"): show the frame of
  // the grid point all of them select, as the book's instruments.js does.
  function wireSliders(div) {
    const meta = div.layout && div.layout.meta && div.layout.meta.instrument;
    if (!meta || meta.params.length < 2) return;
    const index = meta.params.map((name) => {
      const s = (div.layout.sliders || []).find((x) => x.name === name);
      return s && s.active ? s.active : 0;
    });
    div.on("plotly_sliderchange", (event) => {
      const k = meta.params.indexOf(event.slider.name);
      if (k < 0) return;
      index[k] = Number(event.step.value);
      Plotly.animate(div, [index.join(",")], NOW);
    });
  }

  function draw(i) {
    if (drawn.has(i)) return;
    drawn.add(i);
    const div = slides[i].querySelector(".plotly-graph-div");
    if (!div) return;
    const fig = JSON.parse(slides[i].querySelector("script.figure").textContent);
    const layout = Object.assign({}, fig.layout, { autosize: true });
    delete layout.height; delete layout.width;
    if (window.innerWidth < 600) {  // a phone: smaller text, narrower margins, the title above the legend
      const m = layout.margin || {};
      layout.font = Object.assign({}, layout.font, { size: 10 });
      layout.title = Object.assign({}, typeof layout.title === "string" ? { text: layout.title } : layout.title,
        { font: { size: 11 }, y: 0.99, yanchor: "top" });
      layout.margin = Object.assign({}, m, { l: 48, r: 8, t: Math.max(m.t || 0, 110) });
      layout.legend = Object.assign({}, layout.legend, { font: { size: 10 } });
    }
    Plotly.newPlot(div, fig.data, layout, { displaylogo: false, responsive: true }).then(() => {
      if (fig.frames) Plotly.addFrames(div, fig.frames);
      wireSliders(div);
      div.dataset.drawn = "1";
    });
  }

  function show(i) {
    current = Math.max(0, Math.min(slides.length - 1, i));
    slides.forEach((s, k) => s.classList.toggle("current", k === current));
    counter.textContent = (current + 1) + " / " + slides.length;
    if (location.hash !== "#" + (current + 1)) history.replaceState(null, "", "#" + (current + 1));
    draw(current);
    draw(current + 1);  // the next one is ready before it is shown
  }

  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, textarea, select")) return;
    const next = ["ArrowRight", "ArrowDown", "PageDown", " ", "Enter"];
    const prev = ["ArrowLeft", "ArrowUp", "PageUp", "Backspace"];
    if (next.includes(e.key)) { show(current + 1); e.preventDefault(); }
    else if (prev.includes(e.key)) { show(current - 1); e.preventDefault(); }
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(slides.length - 1);
  });
  let x0 = null;
  document.addEventListener("touchstart", (e) => { x0 = e.touches[0].clientX; }, { passive: true });
  document.addEventListener("touchend", (e) => {
    if (x0 === null || e.target.closest(".plotly-graph-div")) { x0 = null; return; }
    const dx = e.changedTouches[0].clientX - x0;
    if (Math.abs(dx) > 50) show(current + (dx < 0 ? 1 : -1));
    x0 = null;
  });
  window.addEventListener("hashchange", () => show(Number(location.hash.slice(1)) - 1 || 0));
  window.collabSlides = { show: show, current: () => current, count: slides.length };
  show(Number(location.hash.slice(1)) - 1 || 0);
})();
"""


def render_slide(slide: Slide, index: int) -> str:
    parts = [f'<section class="slide {slide.kind}" id="s{index + 1}">', f"<h1>{slide.title}</h1>"]
    if slide.bullets:
        parts.append("<ul>" + "".join(f"<li>{b}</li>" for b in slide.bullets) + "</ul>")
    if slide.figure is not None:
        data = json.dumps(slide.figure, separators=(",", ":")).replace("</", "<\\/")
        parts.append('<div class="figure-box"><div class="plotly-graph-div"></div></div>')
        parts.append(f'<script type="application/json" class="figure">{data}</script>')
    if slide.note:
        parts.append(f'<div class="note">{slide.note}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def render_deck(week: Week, times: dict[str, int]) -> str:
    slides = week_slides(week, times)
    body = "\n".join(render_slide(s, i) for i, s in enumerate(slides))
    title = html.escape(f"Week {week.number}: {week.title}")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
            f'<div class="counter"></div>\n<script src="plotly.min.js"></script>\n<script>{JS}</script>\n'
            "</body>\n</html>\n")


def build(out: Path = OUT, only: list[int] | None = None) -> list[Path]:
    """Write the decks (and plotly.min.js) into ``out``; return the decks' paths."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLOTLY_JS, out / "plotly.min.js")
    times = lab_times()
    written = []
    for week in weeks():
        if only and week.number not in only:
            continue
        path = out / f"week-{week.number}.html"
        path.write_text(render_deck(week, times))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weeks", nargs="*", type=int, help="weeks to build (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    for path in build(args.out, args.weeks or None):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
