"""Time every lab as a learner runs it: a fresh kernel, top to bottom, one lab at a time.

Each lab must finish in under 60 s on a quiet 2-core machine (the small-config mode its outputs are stored
from). The time includes starting the kernel and importing torch. With ``--write``, the table also goes to
``book/appendix/_lab_times.md``, which the course guide includes.

Run: python benchmarks/lab_times.py [--write] [labs/03_system/early_exit.ipynb ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
TABLE = ROOT / "book" / "appendix" / "_lab_times.md"


def time_lab(path: Path) -> float:
    """Seconds to execute the notebook at ``path`` in a new kernel (outputs discarded)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no start-up warnings
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", type=Path, help="notebooks to time (default: every lab)")
    parser.add_argument("--write", action="store_true", help=f"also write {TABLE.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.write and args.labs:
        parser.error("--write times every lab: give no lab names with it")
    labs = [p.resolve() for p in args.labs] or sorted((ROOT / "labs").glob("*/*.ipynb"))
    rows = []
    for path in labs:
        seconds = time_lab(path)
        rows.append((path.relative_to(ROOT / "labs").with_suffix(""), seconds))
        print(f"{seconds:6.1f} s  {'ok  ' if seconds < TARGET_S else 'SLOW'}  {rows[-1][0]}", flush=True)
    slow = [name for name, s in rows if s >= TARGET_S]
    print(f"{len(rows)} labs, {sum(s for _, s in rows):.0f} s in all, slowest {max(s for _, s in rows):.1f} s; "
          f"{'all' if not slow else len(rows) - len(slow)} under {TARGET_S:.0f} s"
          + (f" (over: {', '.join(map(str, slow))})" if slow else ""))
    if args.write:
        machine = f"{_cpu()}, {os.cpu_count()} cores"
        lines = [f"Measured by `benchmarks/lab_times.py` on {date.today():%Y-%m-%d} ({machine}): each lab in a fresh",
                 "kernel, top to bottom, including the kernel's start and the imports.", "",
                 "| lab | time (s) |", "| --- | ---: |"]
        lines += [f"| `{name}` | {seconds:.0f} |" for name, seconds in rows]
        TABLE.write_text("\n".join(lines) + "\n")
        print(f"wrote {TABLE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
