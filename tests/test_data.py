"""The market data the project ships (``data/market``) is what ``data/README.md`` lists: every
file is documented, with its source, and has the SHA-256 given there."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def _listed() -> dict[str, str]:
    text = (DATA / "README.md").read_text("utf-8")
    return {path: digest for digest, path in
            re.findall(r"^([0-9a-f]{64})  (market/\S+)$", text, flags=re.M)}


def test_every_shipped_market_file_is_listed_with_its_digest() -> None:
    listed = _listed()
    shipped = {p.relative_to(DATA).as_posix() for p in (DATA / "market").rglob("*")
               if p.is_file()}
    assert shipped == set(listed), "data/market and data/README.md disagree"
    for path, digest in listed.items():
        assert hashlib.sha256((DATA / path).read_bytes()).hexdigest() == digest, path


def test_every_listed_file_has_a_row_with_its_source_and_licence() -> None:
    text = (DATA / "README.md").read_text("utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(market/[^`]+)` \|.*$", text,
                                                       flags=re.M)}
    for path in _listed():
        if path.endswith(".txt"):  # a licence file, named in its data file's row
            continue
        cells = [c.strip() for c in rows[path].strip("|").split("|")]
        assert len(cells) == 5 and all(cells), path
        assert cells[3] in ("no licence stated",) or cells[3].startswith("MIT"), path
