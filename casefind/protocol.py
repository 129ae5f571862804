"""The selection protocol: an immutable, validated model loaded from YAML.

The model says *what* to select; engines (``casefind.engine``) decide *how*. It imports neither pandas
nor DuckDB, so a Spark engine can be added without touching it.

Errors name the file, the line and the path, and all problems are reported at once::

    rules/vf.yaml, line 23, criteria[2] (id 'cin').window: expected a duration like '12 months', got '12 mnths'
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from casefind.codes import SPREADSHEET_NUMBER, sctid_problem
from casefind.dates import Duration
from casefind.errors import Problem, ProtocolError
from casefind.files import decode_user_text, read_user_text
from casefind.schema import CODE_SYSTEMS

MAX_DURATION_YEARS = 150
# The longest duration a protocol may give, per unit: 150 years of 365.25 days. Longer ones make no sense
# for a look-back and would take window starts out of the calendar's range.
_MAX_AMOUNT = {
    "year": MAX_DURATION_YEARS,
    "month": 12 * MAX_DURATION_YEARS,
    "week": MAX_DURATION_YEARS * 36525 // 700,
    "day": MAX_DURATION_YEARS * 36525 // 100,
}


def _parse_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    duration = Duration.parse(value)
    limit = _MAX_AMOUNT[duration.unit]
    if duration.amount > limit:
        also = "" if duration.unit == "year" else f" ({limit} {duration.unit}s)"
        raise ValueError(f"expected a duration of at most {MAX_DURATION_YEARS} years{also}, got '{value}'")
    return duration


DurationField = Annotated[Duration, BeforeValidator(_parse_duration), PlainSerializer(str, return_type=str)]


def _as_tuple(value: Any) -> Any:
    """Let YAML say ``start: cp_plan`` as well as ``start: [cp_plan, unborn_cp_plan]``."""
    return (value,) if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
Tier = Literal["significant", "minor"]
# Whose record a criterion reads (see casefind.engine.duckdb_families for how each is found).
Record = Literal["own", "parent", "household_adult", "sibling"]
CodeSystem = Literal[CODE_SYSTEMS]

# The appointment statuses a protocol may count as missed: a choice among the extract schema's (attended, booked
# or cancelled by the practice never are), so tests/test_rules_errors.py checks each is one of them.
MISSABLE_STATUSES = ("was_not_brought", "did_not_attend", "cancelled_by_patient")
MissableStatus = Literal[MISSABLE_STATUSES]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Code(Frozen):
    code: str
    term: str = ""


def _code_entry(value: Any) -> Any:
    if isinstance(value, str):
        return {"code": value.strip()}
    return value


class Codelist(Frozen):
    """A named set of codes: inline, or loaded from an OpenCodelists-style ``code,term`` CSV file."""

    description: str = ""
    source: str = Field("", description="Provenance: where the codes came from and which version")
    code_system: CodeSystem = "snomed"
    file: str | None = Field(None, description="CSV path relative to the protocol file")
    file_sha256: str | None = None
    report_category: str | None = Field(
        None, description="Category this codelist counts towards in coding-rate reports (e.g. 'Child protection')"
    )
    codes: tuple[Annotated[Code, BeforeValidator(_code_entry)], ...] = ()

    @model_validator(mode="after")
    def _has_codes(self) -> Codelist:
        if not self.codes:
            raise ValueError("a codelist needs 'codes' or a 'file' with at least one code")
        if self.code_system == "snomed":
            bad = [
                f"codes[{i}]: invalid SNOMED CT code '{c.code}': {problem}"
                for i, c in enumerate(self.codes)
                if (problem := sctid_problem(c.code))
            ]
            if bad:
                raise ValueError("\n".join(bad))
        return self

    @property
    def code_values(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes)


class Criterion(Frozen):
    """What every criterion has. Each kind below adds what it needs."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str = Field(description="Plain-English reason shown in the list")
    weight: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    tier: Tier
    lists_adults: bool = Field(
        False,
        description="A pregnancy criterion: the woman is the case for her unborn baby (see README, Families)",
    )
    record: Annotated[tuple[Record, ...], BeforeValidator(_as_tuple), Field(min_length=1)] = Field(
        ("own",),
        description=(
            "Whose record is read: own, parent, household_adult, sibling (any of those listed); a coded_in_window "
            "criterion's child-side `reciprocal` codes are read in the child's own record whatever this lists"
        ),
    )
    requires_concern: bool = Field(
        False, description="Counts only when the child or family has a professional-concern flag"
    )
    half_life: DurationField | None = Field(
        None, description="Recency: the weight halves for every half_life the evidence is old"
    )

    def codelist_refs(self) -> dict[str, tuple[str, ...]]:
        """Field name -> codelist names, for reference checking and for engines' code tables."""
        return {}

    @field_validator("record")
    @classmethod
    def _no_repeats(cls, value: tuple) -> tuple:
        if len(set(value)) != len(value):
            raise ValueError("each record appears once")
        return value

    @field_validator("half_life")
    @classmethod
    def _positive_half_life(cls, value: Duration | None) -> Duration | None:
        if value is not None and value.amount == 0:
            raise ValueError(
                f"expected a duration above zero, got '{value}' (a zero half-life would make the criterion's weight 0)"
            )
        return value


class CodedActive(Criterion):
    """Active on the as-of date when the latest start code is not followed by a *later* end code.

    An end code on the same day as the start does not close it (it is not later), so the child stays on
    the list for the meeting to check. With ``window``, the latest start must also fall within it.
    """

    kind: Literal["coded_active"]
    start: Names
    end: Names = ()
    window: DurationField | None = None

    def codelist_refs(self) -> dict[str, tuple[str, ...]]:
        return {**super().codelist_refs(), "start": self.start, "end": self.end}


class CodedInWindow(Criterion):
    """Any code from ``codes`` within ``window`` before (and including) the as-of date, on a record the
    criterion reads; or a child-side (``reciprocal``) code within ``window`` on the child's own record."""

    kind: Literal["coded_in_window"]
    codes: Names
    window: DurationField
    reciprocal: Names = Field(
        (),
        description=(
            "Child-side codelists, coded in the child's own record ('Domestic abuse victim in household'). One "
            "within the window in the child's own record meets the criterion, whether or not `record` lists "
            "`own`: it says the child lives with the risk, and the parent may not be registered here. It is read "
            "in the child's own record only (list it in `codes` too to read it on a relative's record). A "
            "relative's hit without one in the child's record (at any date) is reported as a data gap. Only "
            "coded_in_window criteria take it: a coded_active criterion's end codes close the relative's code, "
            "not a child-side one, so it would stay met for ever; the other kinds read no relative's risk code "
            "for a child-side code to stand for"
        ),
    )

    def codelist_refs(self) -> dict[str, tuple[str, ...]]:
        refs = {**super().codelist_refs(), "codes": self.codes}
        return {**refs, "reciprocal": self.reciprocal} if self.reciprocal else refs


class NewBirth(Criterion):
    """Born within ``window`` before the as-of date (a birth on the as-of date counts)."""

    kind: Literal["new_birth"]
    window: DurationField


class AntenatalBooking(Criterion):
    """A booking code within ``window``, not followed by a delivery or end-of-pregnancy code.

    Late booking: the ``value`` (gestation in weeks) of a booking event of the same pregnancy, any of them,
    is at least ``late_at_weeks``, or a ``late`` code is recorded in the same pregnancy (the same pregnancy:
    on or after the booking window start and after the latest end code). With ``late_only`` the criterion
    is met only for late bookings. The criterion reads the pregnant woman's record; set ``lists_adults: true``
    so she is listed whatever her age.
    """

    kind: Literal["antenatal_booking"]
    booking: Names
    end: Names = ()
    window: DurationField
    late: Names = ()
    late_at_weeks: Annotated[int, Field(ge=1, le=45)] | None = None
    late_only: bool = False

    def codelist_refs(self) -> dict[str, tuple[str, ...]]:
        return {**super().codelist_refs(), "booking": self.booking, "end": self.end, "late": self.late}

    @model_validator(mode="after")
    def _late_defined(self) -> AntenatalBooking:
        if self.late_only and not self.late and self.late_at_weeks is None:
            raise ValueError("late_only needs 'late' codes or 'late_at_weeks'")
        return self


class MissedAppointments(Criterion):
    """At least ``min_count`` missed appointments within ``window``.

    Missed means an appointment whose status is in ``statuses`` (by default was_not_brought and
    did_not_attend: for a child, "did not attend" is treated as "was not brought", as the RCGP advises), or
    a ``codes`` event (e.g. 901441000000108 Child not brought to appointment, DNA codes). Several records
    on one day count once. A single missed appointment is enough when the child meets any criterion in
    ``single_if`` (e.g. a CP or CIN plan).
    """

    kind: Literal["missed_appointments"]
    window: DurationField
    min_count: Annotated[int, Field(ge=1)] = 2
    statuses: tuple[MissableStatus, ...] = (
        "was_not_brought",
        "did_not_attend",
    )
    codes: Names = ()
    single_if: Names = Field((), description="Criterion ids that make one missed appointment enough")

    def codelist_refs(self) -> dict[str, tuple[str, ...]]:
        return {**super().codelist_refs(), "codes": self.codes}


AnyCriterion = Annotated[
    CodedActive | CodedInWindow | NewBirth | AntenatalBooking | MissedAppointments, Field(discriminator="kind")
]
CRITERION_KINDS = ("coded_active", "coded_in_window", "new_birth", "antenatal_booking", "missed_appointments")


class Population(Frozen):
    """Who can be listed. Ages are whole years on the as-of date, both ends inclusive."""

    min_age: Annotated[int, Field(ge=0)] = 0
    max_age: Annotated[int, Field(ge=0)] = 17
    registered_on_as_of: bool = Field(True, description="Exclude patients not registered on the as-of date")
    include_deaths_within: DurationField | None = Field(
        None, description="Keep children who died within this period before the as-of date; others excluded"
    )

    @model_validator(mode="after")
    def _ages(self) -> Population:
        if self.min_age > self.max_age:
            raise ValueError(f"min_age ({self.min_age}) is above max_age ({self.max_age})")
        return self


REFERENCE_FIELDS = ("start", "end", "codes", "booking", "late", "reciprocal")


class ConcernCodes(Frozen):
    """Concern codes with end codes and a window of their own (``Concern.also``)."""

    codes: Names = Field(min_length=1)
    end: Names = ()
    window: DurationField | None = None


class Concern(Frozen):
    """What counts as professional concern: an open flag in the concerns table on the as-of date, a code
    from ``codes`` within ``window``, or one of ``criteria`` met on the patient's own record (a child
    protection plan, child in need, looked after: the strongest concern there is), on the child or anyone
    linked to the child (parents, household adults, siblings). A code followed by a later code from ``end``
    ("no longer a cause for concern") no longer counts: latest code wins, as for ``coded_active`` (an end
    code on the same day does not close it).

    ``also`` adds concern codes that need end codes and a window of their own: an unborn baby on a CP plan is
    concern for the family until a "no longer" code, for the months of a pregnancy and the new-birth weeks
    after it, and a "no longer" unborn code must not close a cause for concern. Each group is its own "latest
    code wins"."""

    codes: Names = ()
    end: Names = ()
    window: DurationField | None = None
    also: tuple[ConcernCodes, ...] = ()
    criteria: Names = Field(
        (),
        description="Criteria that are professional concern when met on a patient's own record (CP plan, CIN, "
        "looked after); each must read the own record and must not itself require concern",
    )

    def code_groups(self) -> tuple[ConcernCodes, ...]:
        """Every group of concern codes: ``codes`` (with ``end`` and ``window``) first, then ``also``."""
        first = (ConcernCodes(codes=self.codes, end=self.end, window=self.window),) if self.codes else ()
        return first + self.also


class Ranking(Frozen):
    """Who qualifies: one significant criterion, or at least ``minor_criteria_needed`` minor ones (4 when a
    protocol has no ``ranking``: "one significant or four or more minor", as seen in practice; the default
    protocol sets 2)."""

    minor_criteria_needed: Annotated[int, Field(ge=1)] = 4


def reference_problems(codelist_names: set[str], criteria: list, concern: Any = None) -> list[str]:
    """Duplicate criterion ids and undefined codelists (in criteria or concern), as ``path: problem`` lines.

    Works on plain dicts so the loader can report these alongside field errors in one go.
    """
    problems, seen = [], {}
    for i, criterion in enumerate(criteria):
        if not isinstance(criterion, dict):
            continue
        cid = criterion.get("id")
        if cid in seen:
            problems.append(f"criteria[{i}].id: duplicate id '{cid}' (also criteria[{seen[cid]}])")
        seen.setdefault(cid, i)
        for field in REFERENCE_FIELDS:
            problems += _unknown(f"criteria[{i}].{field}", criterion.get(field), codelist_names, "codelist")
    ids = {c.get("id") for c in criteria if isinstance(c, dict)}
    for i, criterion in enumerate(criteria):
        if isinstance(criterion, dict):
            problems += _unknown(f"criteria[{i}].single_if", criterion.get("single_if"), ids, "criterion")
    concern = concern if isinstance(concern, dict) else {}
    for field in ("codes", "end"):
        problems += _unknown(f"concern.{field}", concern.get(field), codelist_names, "codelist")
    also = concern.get("also")
    for i, group in enumerate(also if isinstance(also, list) else ()):
        for field in ("codes", "end"):
            value = group.get(field) if isinstance(group, dict) else None
            problems += _unknown(f"concern.also[{i}].{field}", value, codelist_names, "codelist")
    problems += _unknown("concern.criteria", concern.get("criteria"), ids, "criterion")
    by_id = {c.get("id"): c for c in criteria if isinstance(c, dict)}
    for name in (n for n in _as_tuple(concern.get("criteria") or ()) if n in by_id):
        if by_id[name].get("requires_concern") is True:
            problems.append(f"concern.criteria: '{name}' itself requires concern, so it cannot give it")
        if "own" not in _as_tuple(by_id[name].get("record") or "own"):
            problems.append(f"concern.criteria: '{name}' does not read the patient's own record")
    return problems


def _unknown(path: str, value, known: set, what: str) -> list[str]:
    names = _as_tuple(value or ())
    problems = []
    for name in names if isinstance(names, list | tuple) else ():
        if name not in known:
            close = difflib.get_close_matches(str(name), sorted(k for k in known if k), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(k for k in known if k))}"
            problems.append(f"{path}: unknown {what} '{name}' ({hint})")
    return problems


class Protocol(Frozen):
    name: str
    version: str
    description: str = ""
    population: Population = Population()
    codelists: dict[str, Codelist]
    criteria: tuple[AnyCriterion, ...]
    concern: Concern = Concern()
    ranking: Ranking = Ranking()

    @field_validator("criteria")
    @classmethod
    def _some_criteria(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError("a protocol needs at least one criterion")
        return value

    @model_validator(mode="after")
    def _references(self) -> Protocol:
        criteria = [c.model_dump() for c in self.criteria]
        problems = reference_problems(set(self.codelists), criteria, self.concern.model_dump())
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def all_codes(self) -> frozenset[str]:
        """Every code in every codelist: the only events the engine and the coding report look at."""
        return frozenset(c.code for codelist in self.codelists.values() for c in codelist.codes)

    def report_categories(self) -> dict[str, list[tuple[str, str]]]:
        """Coding-report category -> (code_system, code) pairs, from codelists with a ``report_category``."""
        categories: dict[str, list[tuple[str, str]]] = {}
        for codelist in self.codelists.values():
            if codelist.report_category:
                pairs = categories.setdefault(codelist.report_category, [])
                pairs += [(codelist.code_system, c.code) for c in codelist.codes]
        return {name: sorted(set(pairs)) for name, pairs in sorted(categories.items())}

    def criterion(self, criterion_id: str) -> AnyCriterion:
        return next(c for c in self.criteria if c.id == criterion_id)

    def codelist_hashes(self) -> dict[str, str]:
        """Codelist name -> SHA-256 of its CSV file ('inline' for codes written in the YAML), for provenance."""
        return {name: cl.file_sha256 or "inline" for name, cl in sorted(self.codelists.items())}

    def fingerprint(self) -> str:
        """SHA-256 of the resolved protocol (codes included), independent of YAML layout and comments."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- loading


class _TextLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML loader that never turns a scalar into an int or float: codes stay text, exactly as written.

    libyaml's parser when PyYAML has it (the wheels do): ten times faster than the pure-Python one, which
    took a tenth of a second on the default protocol, on every command. The marks (lines) are the same.
    """


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None, dupes: list | None = None):
    """Map every path in the YAML document to its 1-based line, and collect duplicate keys.

    Read before the document is constructed: construction copies the keys a merge key (``<<: *anchor``)
    brings in into the mapping itself, where the mapping's own keys, which override them, would look like
    duplicates. The merge key itself is skipped; a field it brings in takes the line of its mapping."""
    index = {} if index is None else index
    dupes = [] if dupes is None else dupes
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            if key.value in seen:
                dupes.append((path + (key.value,), key.start_mark.line + 1))
            seen.add(key.value)
            index[path + (key.value,)] = key.start_mark.line + 1
            _line_index(value, path + (key.value,), index, dupes)
            index[path + (key.value,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), index, dupes)
    return index, dupes


def _compose_and_load(text: str) -> tuple[dict, list, object]:
    """The document's lines and duplicate keys (see ``_line_index``) and its data, from one parse."""
    loader = _TextLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, [], None
        lines, dupes = _line_index(node)  # before construction, which changes the node tree (merge keys)
        return lines, dupes, loader.construct_document(node)
    finally:
        loader.dispose()


def format_path(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parse_path(text: str) -> tuple:
    parts: list = []
    for name, idx in re.findall(r"([A-Za-z_][\w-]*)|\[(\d+)\]", text):
        parts.append(int(idx) if idx else name)
    return tuple(parts)


def _line_for(path: tuple, lines: dict) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


class _Locator:
    """Turns a path in the protocol document into ``file, line N, path`` for a message.

    A criterion is also named by its id when it has one: ``criteria[11] (id 'self_harm').window``.
    """

    def __init__(self, source: str, lines: dict, data: dict):
        self.source, self.lines = source, lines
        criteria = data.get("criteria") if isinstance(data.get("criteria"), list) else []
        self.ids = [c.get("id") if isinstance(c, dict) and isinstance(c.get("id"), str) else None for c in criteria]

    def line(self, path: tuple) -> int:
        return _line_for(path, self.lines) or 0

    def __call__(self, path: tuple) -> str:
        line = _line_for(path, self.lines)
        where = f"{self.source}, line {line}" if line else self.source
        return f"{where}, {self._describe(path)}" if path else where

    def _describe(self, path: tuple) -> str:
        text = format_path(path)
        if len(path) < 2 or path[0] != "criteria" or not isinstance(path[1], int) or path[2:3] == ("id",):
            return text
        cid = self.ids[path[1]] if 0 <= path[1] < len(self.ids) else None
        if cid is None:
            return text
        head = format_path(path[:2])
        return f"{head} (id '{cid}'){text[len(head) :]}"


# Where each part's fields are written, and every field a protocol file may use (for "did you mean").
_KIND_MODELS = typing.get_args(typing.get_args(AnyCriterion)[0])  # the members of the criterion union
_PLACES = {Protocol: "the top level", Codelist: "a codelist", Code: "a codelist's codes", Population: "population",
           Concern: "concern", ConcernCodes: "a concern.also group", Ranking: "ranking"}  # fmt: skip
_FIELD_NAMES = sorted({n for model in (*_PLACES, *_KIND_MODELS) for n in model.model_fields})


def _misplaced(name: str, loc: tuple) -> str:
    """The message for a field of another part or criterion kind than where it is written (``loc``)."""
    kinds = [m.model_fields["kind"].annotation.__args__[0] for m in _KIND_MODELS if name in m.model_fields]
    of_kind = next((k for k in loc if k in CRITERION_KINDS), None)
    if of_kind and kinds:
        return f"'{name}' is not a field of kind '{of_kind}' (only of: {', '.join(kinds)})"
    places = [place for model, place in _PLACES.items() if name in model.model_fields]
    if kinds:
        places.append("a criterion" if len(kinds) == len(CRITERION_KINDS) else f"a {' or '.join(kinds)} criterion")
    return f"'{name}' is not a field here (it belongs in {' or '.join(places)})"


def _message(error: dict) -> str:
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        if name in _FIELD_NAMES:  # a field, but of another part or kind: "did you mean" would name it back
            return _misplaced(name, error["loc"])
        close = difflib.get_close_matches(name, _FIELD_NAMES, n=1)
        if close:
            return f"unknown field '{name}' (did you mean '{close[0]}'?)"
        return f"unknown field '{name}' (check the spelling; see the protocol format in the README)"
    if kind == "union_tag_invalid":
        return (
            f"unknown kind '{value.get('kind') if isinstance(value, dict) else value}'; expected one of: "
            + ", ".join(CRITERION_KINDS)
        )
    if kind == "union_tag_not_found":
        return "missing 'kind'; expected one of: " + ", ".join(CRITERION_KINDS)
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type"):
        return f"expected a number, got '{value}'"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got '{value}'"
    if kind == "string_pattern_mismatch" and error["loc"][-1] == "id":
        return f"expected lower-case letters, digits and _, starting with a letter (such as young_carer), got '{value}'"
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'expected')}, got '{value}'"
    return msg.removeprefix("Value error, ").replace("Input should be", "expected")


def _problems_from(exc: ValidationError, locate: _Locator, skip: set[tuple]) -> list[Problem]:
    """One problem per error (and per line of a multi-line one), except those at a path in ``skip``."""
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in CRITERION_KINDS)  # drop the union branch name
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("kind",)
        for text in _message(error).split("\n"):
            path = loc
            match = re.match(r"^([\w.\[\]]+): (.*)$", text)
            if match and "[" in match.group(1) or (match and "." in match.group(1)):
                path, text = loc + _parse_path(match.group(1)), match.group(2)
            if path not in skip:
                problems.append(Problem(locate(path), text))
    return problems


_SPREADSHEET_HINT = (
    "spreadsheet programs show long numbers like 3.42891E+14 and keep only 15 digits: open the file with the "
    "'code' column formatted as text (or edit it in a text editor) and restore the codes"
)


def _spreadsheet_mangled(code: str) -> bool:
    """True when a code looks like a spreadsheet's rendering of a long number rather than what was typed.

    Scientific notation and a trailing '.0' are never in a code (the extract's check uses the same pattern); a
    number of more than 15 digits whose digits past the 15th are all 0 is what a spreadsheet's 15-digit
    precision leaves of a longer one (the caller checks it is also invalid).
    """
    if re.fullmatch(SPREADSHEET_NUMBER, code):
        return True
    return code.isdigit() and len(code) > 15 and not code[15:].strip("0")


def _read_codelist_file(entry: dict, base: Path, where: str) -> list[Problem]:
    """Fill ``codes`` (the valid ones) and ``file_sha256`` from the CSV the codelist names; return problems.

    Problems in the file are located in it, as a spreadsheet shows it: the header is row 1.
    """
    if entry.get("codes"):
        return [Problem(where, "give either 'codes' or 'file', not both")]
    csv_path = base / str(entry["file"])
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        return [
            Problem(
                where,
                f"cannot read codelist file '{csv_path}': {exc.strerror}",
                f"a codelist's file is found from the protocol file's folder ({base}): give its path from there",
            )
        ]
    rows = csv.reader(io.StringIO(decode_user_text(raw)))
    fields = [f.strip().lower() for f in next(rows, [])]
    if "code" not in fields:
        return [
            Problem(
                f"{csv_path}, row 1",
                f"no 'code' column (found: {', '.join(fields) or 'nothing'})",
                "codelist files use the OpenCodelists format: a header 'code,term' then one code per row",
            )
        ]
    snomed = entry.get("code_system", "snomed") == "snomed"
    codes, problems = [], []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(fields, (cell.strip() for cell in row), strict=False))
        code, at = cells.get("code", ""), f"{csv_path}, row {number}, column 'code'"
        if not code:
            problems.append(Problem(at, "missing code", "give the code, or delete the row"))
        elif snomed and (problem := sctid_problem(code)):
            hint = _SPREADSHEET_HINT if _spreadsheet_mangled(code) else None
            problems.append(Problem(at, f"invalid SNOMED CT code '{code}': {problem}", hint))
        else:
            codes.append({"code": code, "term": cells.get("term") or cells.get("description") or ""})
    entry["codes"] = codes
    entry["file_sha256"] = hashlib.sha256(raw).hexdigest()
    return problems


def load_protocol(path: str | Path) -> Protocol:
    """Load and validate a protocol file; raise ``ProtocolError`` listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = read_user_text(path)
    except OSError as exc:
        raise ProtocolError(Problem(source, f"cannot read the protocol file: {exc.strerror}")) from None
    return parse_protocol(text, source=source, base=path.parent)


def parse_protocol(text: str, *, source: str = "<protocol>", base: Path = Path(".")) -> Protocol:
    try:
        lines, dupes, data = _compose_and_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProtocolError(Problem(where, f"not valid YAML: {problem}")) from None
    if not isinstance(data, dict):
        raise ProtocolError(Problem(source, "expected a mapping with name, version, codelists and criteria"))
    locate = _Locator(source, lines, data)
    # Each problem with the protocol line it is sorted by (a codelist file's: the line naming the file).
    problems: dict[Problem, int] = {}
    for path, line in dupes:
        problems.setdefault(Problem(locate(path), "duplicate key (the later one would silently win)"), line)
    # A codelist whose file has problems is given only its valid codes, perhaps none: that is already said.
    skip = set()
    codelists = data.get("codelists") if isinstance(data.get("codelists"), dict) else {}
    for name, entry in codelists.items():
        if isinstance(entry, dict) and entry.get("file"):
            path = ("codelists", name, "file")
            file_problems = _read_codelist_file(entry, base, locate(path))
            for problem in file_problems:
                problems.setdefault(problem, locate.line(path))
            if file_problems:
                skip.add(("codelists", name))
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        for problem in _problems_from(exc, locate, skip):
            problems.setdefault(problem, _line_of(problem))
        # Reference checks run in the model only once every field is valid; list them now too.
        criteria = data.get("criteria") if isinstance(data.get("criteria"), list) else []
        concern = data.get("concern") if isinstance(data.get("concern"), dict) else {}
        for text in reference_problems(set(codelists), criteria, concern):
            path_text, message = text.split(": ", 1)
            path = _parse_path(path_text)
            problems.setdefault(Problem(locate(path), message), locate.line(path))
        protocol = None
    if problems:
        raise ProtocolError(sorted(problems, key=problems.__getitem__))
    return protocol


def _line_of(problem: Problem) -> int:
    match = re.search(r", line (\d+)", problem.location)
    return int(match.group(1)) if match else 0


def default_protocol_path() -> Path:
    """The bundled default protocol: package data when installed, ``rules/`` in a source checkout."""
    packaged = Path(__file__).parent / "rules" / "vulnerable-families.yaml"
    if packaged.exists():
        return packaged
    return Path(__file__).parent.parent / "rules" / "vulnerable-families.yaml"
