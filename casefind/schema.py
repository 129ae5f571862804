"""The extract schema, declared once.

Validation (``casefind.extract``), the README table and ``casefind schema`` are all derived from
``TABLES``. Every value is read as text first; ``type`` says how casefind then interprets it.
"""

from __future__ import annotations

from dataclasses import dataclass

CODE_SYSTEMS = ("snomed", "read2", "ctv3", "emis")
APPOINTMENT_STATUSES = (
    "attended",
    "did_not_attend",
    "was_not_brought",
    "cancelled_by_patient",
    "cancelled_by_practice",
    "booked",
)

# The words of the relationships column casefind links by, written as ``casefind.extract.normalised_word_sql``
# leaves them (lower case, no apostrophes, single spaces). Declared here, below both the reader and the engine:
# the reader needs them to tell which side of a row is the child (a row whose patient_id is not registered
# here is used only when the registered related_patient_id is the child, ``casefind.extract``), the engine to
# make the links (``casefind.engine.duckdb_families``, whose docstring says what each kind links).
PARENT_WORDS = tuple(
    kind + parent
    for kind in ("", "natural ", "birth ", "biological ", "adoptive ", "foster ", "step ", "step")
    for parent in ("mother", "father", "parent", "mum", "dad")
) + (
    "mummy", "mam", "daddy", "carer", "foster carer", "kinship carer", "grandparent carer", "primary carer",
    "main carer", "guardian", "legal guardian", "special guardian", "mothers partner", "fathers partner",
    "parents partner", "partner of mother", "partner of father", "partner of parent",
)  # fmt: skip
# A birth parent, however written ('mum' to one child is 'mother' to the other: the same kind of parent).
BIRTH_PARENT_WORDS = tuple(
    kind + parent
    for kind in ("", "natural ", "birth ", "biological ")
    for parent in ("mother", "father", "parent", "mum", "dad")
) + ("mummy", "mam", "daddy")
# Written from the parent's side: related_patient_id is the child, patient_id the parent (the reverse link).
CHILD_WORDS = tuple(
    kind + child
    for kind in ("", "natural ", "birth ", "biological ", "adopted ", "foster ", "step ", "step")
    for child in ("child", "son", "daughter")
)
BIRTH_CHILD_WORDS = tuple(
    kind + child for kind in ("", "natural ", "birth ", "biological ") for child in ("child", "son", "daughter")
)
SIBLING_WORDS = ("twin",) + tuple(
    kind + sibling for kind in ("", "half ", "step ", "step", "twin ") for sibling in ("sibling", "brother", "sister")
)
HOUSEHOLD_WORDS = ("household member", "member of household", "lives with", "lodger")
# An id written for "unknown" (compared in upper case after trimming; an all-zero or blank id is one too): it
# links no one (``casefind.extract.unknown_id_sql``).
UNKNOWN_IDS = ("NULL", "NONE", "NAN", "N/A", "NA", "UNKNOWN", "NOT KNOWN", "-", "?")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | code | date | nhs_number | choice | number
    required: bool
    meaning: str
    choices: tuple[str, ...] = ()
    default: str | None = None  # used when the column is absent or the value empty
    identifies_patient: bool = False  # never echo the value in a message
    open_end: bool = False  # an end date: one after 2200 (9999-12-31, "no end" in some systems) reads as empty
    if_absent: str | None = None  # what a file without this optional column means for the list (a warning)

    @property
    def exact(self) -> bool:
        """A code or an identifier (a ``*_id`` column, or one that identifies a patient): text that means what
        it says digit for digit. A Parquet file that stores one as a floating-point number, or as a decimal with
        places, has changed it ('3.42191E+14', '1234.00'), so ``casefind.extract`` refuses that column; other
        text columns (``value``: a weight, a gestation) may hold numbers."""
        return self.type in ("code", "nhs_number") or (
            self.type == "string" and (self.identifies_patient or self.name.endswith("_id"))
        )


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    meaning: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()  # columns whose values must be unique
    if_absent: str | None = None  # what an extract without this optional table means for the list (a warning)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _patient_ref(meaning: str = "The patient this row is about") -> Column:
    return Column("patient_id", "string", True, meaning, identifies_patient=True)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "patients",
            True,
            "One row per patient in the extract (registered now or in the past).",
            (
                Column("patient_id", "string", True, "Practice system identifier", identifies_patient=True),
                Column(
                    "nhs_number",
                    "nhs_number",
                    False,
                    "10 digits (spaces and dashes between them are ignored); the modulus 11 check digit is "
                    "verified and invalid ones reported",
                    identifies_patient=True,
                ),
                Column("family_name", "string", False, "Surname", identifies_patient=True),
                Column("given_name", "string", False, "First name", identifies_patient=True),
                Column("date_of_birth", "date", True, "Date of birth", identifies_patient=True),
                Column("sex", "string", False, "As recorded (e.g. F, M, U)"),
                Column(
                    "date_of_death",
                    "date",
                    False,
                    "Empty when alive",
                    identifies_patient=True,
                    open_end=True,
                    if_absent="every patient is taken to be alive",
                ),
                Column("registered_from", "date", False, "Start of current registration; empty = unknown"),
                Column(
                    "registered_to",
                    "date",
                    False,
                    "End of registration; empty = still registered",
                    open_end=True,
                    if_absent="every patient is taken to be still registered",
                ),
                Column(
                    "household_id",
                    "string",
                    False,
                    "Same address / household",
                    identifies_patient=True,
                    if_absent="no one is linked by household (household adults, children in the same household)",
                ),
                Column("practice_id", "string", False, "Practice code, for multi-practice extracts"),
            ),
            unique=("patient_id",),
        ),
        Table(
            "events",
            True,
            "Coded clinical events (one row per code entered in a record).",
            (
                _patient_ref(),
                Column("code", "code", True, "The clinical code, always read as text"),
                Column("date", "date", True, "Date the event happened (or was recorded)"),
                Column("term", "string", False, "The code's description as shown in the record"),
                Column("code_system", "choice", False, "Coding scheme", CODE_SYSTEMS, default="snomed"),
                Column(
                    "value",
                    "string",
                    False,
                    "Associated value (e.g. gestation in weeks at booking)",
                    if_absent="no gestation at booking is read, so late bookings come from late-booker codes only",
                ),
                Column("clinician_id", "string", False, "Who recorded it"),
            ),
        ),
        Table(
            "relationships",
            False,
            "Links between patients: parents, carers, household members, siblings.",
            (
                _patient_ref("The child (or person) the relationship is recorded for"),
                Column("related_patient_id", "string", True, "The related person", identifies_patient=True),
                Column("relationship", "string", True, "mother, father, parent, step-parent, carer, sibling ..."),
                Column("start_date", "date", False, "Relationship valid from (empty = always)"),
                Column(
                    "end_date",
                    "date",
                    False,
                    "Relationship valid until (empty = still valid)",
                    open_end=True,
                    if_absent="every relationship is taken to be still valid (an ended one links as if current)",
                ),
            ),
            if_absent="children are linked only by a shared household_id: no parents living elsewhere, no "
            "siblings in other households",
        ),
        Table(
            "appointments",
            False,
            "Booked appointments and what happened.",
            (
                _patient_ref(),
                Column("date", "date", True, "Appointment date"),
                Column("status", "choice", True, "What happened", APPOINTMENT_STATUSES),
                Column("clinician_id", "string", False, "Who the appointment was with"),
            ),
            if_absent="missed appointments are counted from coded events only",
        ),
        Table(
            "concerns",
            False,
            "Professional-concern flags raised by practice staff.",
            (
                _patient_ref(),
                Column("raised_on", "date", True, "Date the concern was raised"),
                Column("raised_by", "string", False, "Who raised it"),
                Column(
                    "resolved_on",
                    "date",
                    False,
                    "Date resolved (empty = open)",
                    open_end=True,
                    if_absent="every concern is taken to be still open",
                ),
                Column("note", "string", False, "Free text; casefind never prints it"),
            ),
            if_absent="professional concern comes from the protocol's concern codes only, so criteria that "
            "need it count only where such a code is recorded",
        ),
    )
}


# The columns that hold a patient's id, in any table (patient_id, related_patient_id): compared across files.
PATIENT_ID_COLUMNS = tuple(
    dict.fromkeys(c.name for t in TABLES.values() for c in t.columns if c.name.endswith("patient_id"))
)


def describe() -> list[dict[str, str]]:
    """The schema as rows (table, column, type, required, meaning), for ``casefind schema`` and docs."""
    rows = []
    for table in TABLES.values():
        for col in table.columns:
            kind = col.type if not col.choices else f"one of: {', '.join(col.choices)}"
            rows.append(
                {
                    "table": table.name + ("" if table.required else " (optional)"),
                    "column": col.name,
                    "type": kind,
                    "required": "required" if col.required else "optional",
                    "meaning": col.meaning
                    + (" (unique)" if col.name in table.unique else "")
                    + ("; a date after 2200, such as 9999-12-31, counts as empty" if col.open_end else ""),
                }
            )
    return rows


def markdown_table() -> str:
    """The schema as the Markdown table in the README (a test keeps the two identical)."""
    lines = ["| table | column | type | required | meaning |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row.values()) + " |" for row in describe()]
    return "\n".join(lines)
