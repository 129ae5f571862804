"""Results are values: what an engine found and the ranked list, independent of how they are shown.

Engines return an ``Evaluation``; ``casefind.ranking`` ranks it (a ``Ranked``); ``casefind.api`` adds the run's
``RunInfo`` to make a ``CaseList``; exporters format a ``CaseList`` and never recompute anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

# Columns of Evaluation.hits: one row per (patient, criterion) met on the as-of date.
HIT_COLUMNS = ("patient_id", "criterion_id", "date", "code", "code_system", "term", "value", "detail")

# Columns of CaseList.entries, in export order.
LIST_COLUMNS = (
    "family_rank",
    "family_id",
    "rank",
    "patient_id",
    "nhs_number",
    "family_name",
    "given_name",
    "date_of_birth",
    "age",
    "score",
    "tier",
    "criteria",
    "reasons",
    "evidence",
    "score_components",
    "concern",
    "linked_adults",
    "latest_evidence",
    "notes",
)


@dataclass(frozen=True)
class Evaluation:
    """What an engine found: every criterion met, and the people and links those hits concern."""

    people: pd.DataFrame  # patients with hits and their relatives: names, age, family_id, concern, exclusion ...
    hits: pd.DataFrame  # HIT_COLUMNS + via_patient_id, via_relation (whose record), reciprocal_missing
    links: pd.DataFrame = field(default_factory=pd.DataFrame)  # child_id, relative_id, relation, role
    warnings: tuple[str, ...] = ()
    population: int = 0  # eligible patients in the age range on the as-of date
    no_linked_adult: int = 0  # eligible children under 5 with no linked adult (a data gap)


@dataclass(frozen=True)
class RunInfo:
    """Provenance recorded with every list: enough to reproduce it."""

    as_of: date
    protocol_name: str
    protocol_version: str
    protocol_sha256: str
    codelist_sha256: dict[str, str]
    input_files: dict[str, dict[str, str]]  # table -> {file, format, encoding, sha256}
    casefind_version: str
    rows_read: dict[str, int]
    rows_rejected: int
    population: int
    listed: int
    held_back_without_concern: int = 0
    below_threshold: int = 0
    data_gaps: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    rejects_file: str | None = None
    mapping_file: dict[str, str] | None = None  # {file, sha256} of the --mapping file, None without one
    skip_bad_rows: bool = False
    show_all: bool = False
    full: bool = False

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "options": {"full": self.full, "show_all": self.show_all, "skip_bad_rows": self.skip_bad_rows},
            "mapping": dict(sorted(self.mapping_file.items())) if self.mapping_file is not None else None,
            "protocol": {"name": self.protocol_name, "version": self.protocol_version, "sha256": self.protocol_sha256},
            "codelists_sha256": dict(sorted(self.codelist_sha256.items())),
            "input_files": dict(sorted(self.input_files.items())),
            "casefind_version": self.casefind_version,
            "rows_read": dict(sorted(self.rows_read.items())),
            "rows_rejected": self.rows_rejected,
            "population": self.population,
            "listed": self.listed,
            "held_back_without_concern": self.held_back_without_concern,
            "below_threshold": self.below_threshold,
            "data_gaps": dict(sorted(self.data_gaps.items())),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CaseList:
    """The ranked discussion list (``entries``, LIST_COLUMNS) with per-criterion ``evidence`` rows and the
    listed children's linked ``adults``."""

    entries: pd.DataFrame
    evidence: pd.DataFrame  # patient_id, criterion_id, label, tier, weight, date, code, term, detail, via_*
    info: RunInfo
    adults: pd.DataFrame = field(default_factory=pd.DataFrame)
    rejects: pd.DataFrame = field(default_factory=pd.DataFrame)
