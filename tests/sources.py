"""Shared check for sourced catalogs: every source is a references.bib key, or says derived (citing what
it was derived from) or assumed."""

import re
from pathlib import Path

BIB_KEYS = set(re.findall(r"^@\w+\{([^,]+),", (Path(__file__).parents[1] / "references.bib").read_text(), re.M))


def cited_keys(label: str, sources: dict) -> list[str]:
    """The bib keys a spec's ``sources`` cite; fails on a derived figure that cites nothing."""
    keys = []
    for name, source in sources.items():
        if source.startswith("derived:"):
            cited = re.findall(r"\[([^\]]+)\]", source)
            assert cited, f"{label}.{name}: a derived figure must cite what it is derived from"
            keys += [k.strip() for group in cited for k in group.split(",")]
        elif not source.startswith(("assumed:", "measured:")):
            keys.append(source)
    return keys


def assert_sources_exist(label: str, sources: dict) -> None:
    missing = [k for k in cited_keys(label, sources) if k not in BIB_KEYS]
    assert not missing, f"{label}: {missing} not in references.bib"
