"""The labs as plain notebooks: their MyST resolved into the Markdown and HTML that every notebook viewer shows.

The repository's labs are written for the book (Jupyter Book, MyST-NB) and for JupyterLab with jupyterlab-myst:
their Markdown holds ``{cite:p}`` roles, ``{glue:text}`` values, ``{doc}``/``{ref}`` links and ``{exercise}`` /
``{solution}`` directives. Colab, GitHub's notebook view and a JupyterLab without the extension show these as
raw text. ``python scripts/notebook_edition.py OUT [LAB ...]`` writes each lab with its Markdown resolved:

- a citation becomes author-year text linked to a "References" cell appended at the end of the lab, written
  from ``references.bib`` (pybtex reads it, as sphinxcontrib-bibtex does for the book);
- a glued value becomes the text the book shows, formatted by MyST-NB's own ``format_plain_text`` from the
  value the lab stored in its outputs;
- ``{doc}`` and ``{ref}`` become links to the online book (a reference to an exercise of the same lab, a link
  inside the notebook);
- an exercise becomes a bold "Exercise N" line numbered within its lab (as jupyterlab-myst numbers them), with
  an anchor for its label; a solution becomes an HTML ``<details>`` block, folded until opened, or is dropped
  with ``--no-solutions`` (the student edition of ``scripts/course.py`` has none to drop);
- a code cell tagged ``solution`` is a Colab form cell (``cellView: form``, code hidden until opened).

Code cells and their outputs are left as they are.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
GLUE_PREFIX = "application/papermill.record/"

_ROLE = re.compile(r"\{(?P<role>cite:p|cite:t|glue:text|glue|doc|ref)\}`(?P<body>[^`]*)`")
_FENCE_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>exercise|solution)\}\s*(?P<arg>.*?)\s*$")
_OPTION = re.compile(r"^:(?P<key>[a-z-]+):\s*(?P<value>.*?)\s*$")
_LINK_TEXT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


def book_url() -> str:
    """Where the book is published: the repository's GitHub Pages site (``_config.yml`` names the repository)."""
    m = re.fullmatch(r"https://github\.com/(?P<org>[^/]+)/(?P<repo>[^/]+?)/?", CONFIG["repository"]["url"])
    if not m:
        raise ValueError(f"not a GitHub repository URL: {CONFIG['repository']['url']!r}")
    return f"https://{m['org']}.github.io/{m['repo']}/"


@lru_cache(maxsize=1)
def bibliography() -> dict:
    from pybtex.database import parse_file

    return parse_file(str(ROOT / CONFIG["bibtex_bibfiles"][0])).entries


def _last_names(entry) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = []
    for person in people:
        last = " ".join(person.last_names) or " ".join(person.first_names)
        names.append(last.replace("{", "").replace("}", ""))
    return names


def author_year(key: str) -> tuple[str, str]:
    """``("Kang et al.", "2017")`` for a bib key, as the book's author_year style abbreviates it."""
    entries = bibliography()
    if key not in entries:
        raise KeyError(f"{key!r} is not in {CONFIG['bibtex_bibfiles'][0]}")
    entry = entries[key]
    names = _last_names(entry)
    if not names:  # an organisation written as {{NVIDIA Corporation}}
        raw = entry.fields.get("author", key)
        names = [raw.replace("{", "").replace("}", "")]
    if len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return who, entry.fields.get("year", "n.d.")


def reference_line(key: str) -> str:
    """One entry of the references cell: authors, year, title, venue, and its DOI or URL as a link."""
    entry = bibliography()[key]
    who, year = author_year(key)
    title = entry.fields.get("title", "").replace("{", "").replace("}", "")
    venue = next((entry.fields[f] for f in ("journal", "booktitle", "publisher", "institution") if f in entry.fields), "")
    venue = venue.replace("{", "").replace("}", "")
    link = ""
    if "doi" in entry.fields:
        link = f" [doi:{entry.fields['doi']}](https://doi.org/{entry.fields['doi']})"
    elif "url" in entry.fields:
        link = f" <{entry.fields['url']}>"
    else:
        m = re.search(r"\\url\{([^}]+)\}", entry.fields.get("howpublished", ""))
        if m:
            link = f" <{m[1]}>"
    parts = [f'<a id="ref-{key}"></a>{who} ({year}). {title}.']
    if venue:
        parts.append(f"*{venue}*.")
    return " ".join(parts) + link


def glued_values(nb: dict) -> dict[str, str]:
    """The ``text/plain`` form of every value the lab glued (``collab_lib.viz.glue``), by name."""
    values = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            data = out.get("data", {})
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain"))
            if name is not None and text is not None:
                values[name] = "".join(text) if isinstance(text, list) else text
    return values


@lru_cache(maxsize=1)
def book_labels() -> dict[str, str]:
    """``(label)=`` targets of the book's pages, by label: the page (without suffix) that holds each."""
    labels = {}
    for page in sorted((ROOT / "book").rglob("*.md")):
        for label in re.findall(r"^\((?P<label>[\w-]+)\)=\s*$", page.read_text(), re.M):
            labels[label] = page.relative_to(ROOT).with_suffix("").as_posix()
    return labels


def _page_url(doc: str, lab: Path) -> str:
    """The online address of the book page ``doc`` names, relative to ``lab`` (or absolute from the root)."""
    target = (ROOT / doc.lstrip("/")) if doc.startswith("/") else (lab.parent / doc)
    rel = target.resolve().relative_to(ROOT).as_posix()
    return book_url() + re.sub(r"\.(md|ipynb)$", "", rel) + ".html"


class Resolver:
    """Resolves one lab's Markdown; collects the keys it cites for the references cell."""

    def __init__(self, nb: dict, lab: Path, solutions: bool = True):
        self.lab, self.solutions = lab, solutions
        self.glue = glued_values(nb)
        self.cited: list[str] = []
        self.exercises: dict[str, int] = {}  # label -> number within the lab
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                self._number("".join(cell["source"]))

    def _number(self, text: str) -> None:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = _FENCE_OPEN.match(line)
            if m and m["name"] == "exercise":
                n = len(self.exercises) + 1
                label = next((o["value"] for o in map(_OPTION.match, lines[i + 1:i + 4]) if o and o["key"] == "label"),
                             None)
                if label is None:
                    raise ValueError(f"{self.lab.name}: exercise {n} has no :label:")
                self.exercises[label] = n

    def _cite(self, keys: str, textual: bool) -> str:
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            who, year = author_year(key)
            if key not in self.cited:
                self.cited.append(key)
            parts.append(f"{who} ([{year}](#ref-{key}))" if textual else f"[{who}, {year}](#ref-{key})")
        return "; ".join(parts) if textual else "(" + "; ".join(parts) + ")"

    def _role(self, m: re.Match) -> str:
        role, body = m["role"], m["body"]
        if role in ("cite:p", "cite:t"):
            return self._cite(body, textual=role == "cite:t")
        if role in ("glue:text", "glue"):
            from myst_nb.core.variables import format_plain_text

            key, _, spec = body.rpartition(":") if ":" in body else (body, "", "s")
            if "::" in key:
                raise ValueError(f"{self.lab.name}: glue from another notebook ({body!r}) has no value here")
            if key not in self.glue:
                raise KeyError(f"{self.lab.name}: no glued value {key!r} in the lab's outputs")
            return format_plain_text(self.glue[key], spec)
        link = _LINK_TEXT.match(body)
        text, target = (link["text"], link["target"]) if link else (None, body)
        if role == "doc":
            return f"[{text or target}]({_page_url(target, self.lab)})"
        if target in self.exercises:  # role == "ref"
            return f"[{text or f'Exercise {self.exercises[target]}'}](#{target})"
        page = book_labels().get(target)
        if page is None:
            raise KeyError(f"{self.lab.name}: {{ref}} to unknown label {target!r}")
        return f"[{text or target.replace('-', ' ')}]({book_url()}{page}.html#{target})"

    def markdown(self, text: str) -> str:
        """``text`` with its directives and roles resolved."""
        out, stack = [], []  # stack: (fence, name) of the open directives
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            m = _FENCE_OPEN.match(line)
            if m:
                opts, j = {}, i + 1
                while j < len(lines) and _OPTION.match(lines[j]):
                    o = _OPTION.match(lines[j])
                    opts[o["key"]] = o["value"]
                    j += 1
                if m["name"] == "exercise":
                    label = opts["label"]
                    title = f" ({m['arg']})" if m["arg"] else ""
                    out.append(f'<a id="{label}"></a>**Exercise {self.exercises[label]}**{title}')
                else:
                    of = m["arg"]
                    name = f"Solution to Exercise {self.exercises[of]}" if of in self.exercises else "Solution"
                    out.append(f"<details><summary>{name}</summary>\n" if self.solutions else "")
                stack.append((m["fence"], m["name"]))
                i = j
                continue
            if stack and line.strip() == stack[-1][0]:
                _, name = stack.pop()
                if name == "solution" and self.solutions:
                    out.append("\n</details>")
                i += 1
                continue
            if not (stack and any(n == "solution" for _, n in stack) and not self.solutions):
                out.append(_ROLE.sub(self._role, line))
            i += 1
        if stack:
            raise ValueError(f"{self.lab.name}: a {{{stack[-1][1]}}} directive is never closed")
        return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")

    def references_cell(self) -> dict | None:
        if not self.cited:
            return None
        lines = ["## References", ""] + [f"- {reference_line(k)}" for k in self.cited]
        return {"cell_type": "markdown", "id": "references", "metadata": {}, "source": "\n".join(lines)}


def notebook_edition(nb: dict, lab: Path, solutions: bool = True) -> dict:
    """The lab ``nb`` (read from ``lab``) with its Markdown resolved for any notebook viewer."""
    nb = copy.deepcopy(nb)
    resolver = Resolver(nb, lab, solutions)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = resolver.markdown("".join(cell["source"]))
            if not text.strip():
                continue
            cell["source"] = text
        elif "solution" in cell.get("metadata", {}).get("tags", []):
            if not solutions:
                continue
            cell["metadata"]["cellView"] = "form"  # Colab: code hidden until the reader opens it
        cells.append(cell)
    refs = resolver.references_cell()
    if refs:
        cells.append(refs)
    nb["cells"] = cells
    return nb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("labs", nargs="*", type=Path)
    parser.add_argument("--no-solutions", action="store_true")
    args = parser.parse_args(argv)
    labs = [p.resolve() for p in args.labs] or sorted((ROOT / "labs").glob("*/*.ipynb"))
    for lab in labs:
        nb = notebook_edition(json.loads(lab.read_text()), lab, solutions=not args.no_solutions)
        dest = args.out / lab.relative_to(ROOT / "labs")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(dest)


if __name__ == "__main__":
    main()
