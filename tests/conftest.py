"""Shared test helpers: tiny ASCII tables -> extract folders."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def parse_table(text: str) -> list[dict[str, str]]:
    """Parse a pipe table (header row, then rows; blank cells are empty values)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not set(ln.strip()) <= set("-|+ ")]
    header = [h.strip() for h in lines[0].split("|")]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == len(header), f"table row has {len(cells)} cells, header has {len(header)}: {line}"
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    import csv

    columns = columns or (list(rows[0]) if rows else [])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def make_extract(tmp_path):
    """make_extract(patients=TABLE_TEXT, events=TABLE_TEXT, ...) -> folder with one CSV per table."""

    def make(**tables: str) -> Path:
        folder = tmp_path / "extract"
        folder.mkdir(exist_ok=True)
        for name, text in tables.items():
            rows = parse_table(text)
            write_csv(folder / f"{name}.csv", rows, [h.strip() for h in text.strip().splitlines()[0].split("|")])
        if "events" not in tables:
            (folder / "events.csv").write_text("patient_id,code,date\n")
        return folder

    return make
