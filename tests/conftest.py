"""Shared test helpers: tiny ASCII tables -> extract folders."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def write_files(folder: Path, **files: str | bytes) -> Path:
    """Write ``events_csv="..."`` as ``folder/events.csv`` (and so on); text is written as UTF-8."""
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        path = folder / name.replace("_csv", ".csv")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def extract_problems(folder: Path, **kwargs) -> list[str]:
    """The problems ``read_extract(folder, **kwargs)`` stops with, as the user reads them."""
    from casefind.errors import ExitCode, ExtractError
    from casefind.extract import read_extract

    with pytest.raises(ExtractError) as caught:
        read_extract(folder, **kwargs)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    return [str(p) for p in caught.value.problems]


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
