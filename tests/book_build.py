"""Build the book from the labs' stored outputs (no execution), for the tests and `make book-stored`.

`make book` executes every lab while building; `make test` has just re-executed and compared every lab with
nbval, so here the book is built from what is stored, with the same configuration except the execution
mode. Warnings are errors (`-W`), as in `make book`.

Usage: ``python -m tests.book_build [SOURCE_DIR]``
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def build_book(source: Path = ROOT, execute: bool = False) -> subprocess.CompletedProcess:
    """Run ``jupyter-book build`` on ``source`` (``-W -n --keep-going --all``); return the finished process.

    With ``execute=False`` the configuration is ``source/_config.yml`` with ``execute_notebooks: "off"``,
    written to ``source/_build/_config.stored.yml``.
    """
    source = Path(source).resolve()
    config = yaml.safe_load((source / "_config.yml").read_text())
    if not execute:
        config.setdefault("execute", {})["execute_notebooks"] = "off"
        # Jupyter Book resolves local extension paths against the config file's folder.
        extensions = config.get("sphinx", {}).get("local_extensions", {})
        for name, path in extensions.items():
            extensions[name] = str(source / path)
    out = source / "_build"
    out.mkdir(exist_ok=True)
    config_path = out / "_config.stored.yml" if not execute else source / "_config.yml"
    if not execute:
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(source), "--config", str(config_path), "-W", "-n", "--keep-going", "--all"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=source)


if __name__ == "__main__":
    proc = build_book(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    sys.stdout.write(proc.stdout[-5000:])
    sys.stderr.write(proc.stderr[-5000:])
    sys.exit(proc.returncode)
