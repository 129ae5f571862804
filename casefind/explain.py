"""``casefind explain``: for one patient, every criterion met or not and why, the score arithmetic and the
family. Facts come from the engine (``Evaluation``, ``patient_detail``) and the ranking; this module only
words them."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date

import pandas as pd

from casefind.engine.duckdb_engine import GESTATION
from casefind.engine.duckdb_families import ADULT_AGE, concern_id
from casefind.errors import Problem
from casefind.protocol import AntenatalBooking, CodedActive, CodedInWindow, MissedAppointments, NewBirth, Protocol
from casefind.ranking import Ranked, evidence_table
from casefind.results import Evaluation
from casefind.schema import PATIENT_ID_COLUMNS

CARRIED = "met on this patient's record; carried to linked children"
PROBLEMS_SHOWN = 5  # of the rows left out by --skip-bad-rows; build-list writes them all to a rejects file


@dataclass(frozen=True)
class CriterionExplanation:
    criterion_id: str
    label: str
    status: str  # counted | held back ... | met, but this patient cannot be listed ... | CARRIED | not met
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    patient_id: str
    as_of: date
    summary: tuple[str, ...]
    criteria: tuple[CriterionExplanation, ...]
    family: tuple[str, ...]
    left_out: tuple[str, ...] = ()  # with --skip-bad-rows: the bad rows left out, which may hide links or codes


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _fmt(row) -> str:
    term, code = _text(row.term), _text(row.code)
    what = f"{term} ({code})" if term and code else term or code
    return f"{what} on {pd.Timestamp(row.date):%Y-%m-%d}"


def _hit_text(hit) -> str:
    """'mother (patient P9): ...', 'child's record: ...' (a child-side code), or 'own record: ...'."""
    if isinstance(hit.via_patient_id, str):
        who = f"{hit.via_relation} (patient {hit.via_patient_id})"
    else:
        who = hit.via_relation if isinstance(hit.via_relation, str) else "own record"
    return f"{who}: {_fmt(hit)}"


def _reads_child_side_apart(c) -> bool:
    """Whether ``c``'s child-side (``reciprocal``) codes in the patient's own record are read apart from its
    ``codes`` there: always unless it reads ``own`` and its ``codes`` hold every child-side codelist."""
    child_side = c.codelist_refs().get("reciprocal", ())
    return bool(child_side) and ("own" not in c.record or not set(child_side) <= set(c.codes))


def _gestation(row, late_at_weeks: int) -> str:
    """Why the booking's gestation is not late, as the engine read it (``weeks``) and shows it (``gestation``)."""
    value = _text(row.value).strip()
    if not value:
        return "no gestation recorded"
    if pd.isna(row.weeks):
        return f"gestation '{value}' could not be read as a number of weeks"
    return f"gestation {row.gestation} at booking, below {late_at_weeks} weeks"


def _not_late(c: AntenatalBooking, start, rows: pd.DataFrame) -> str:
    """Why a booking in the window, not ended, is not late (``duckdb_engine._antenatal_booking``): no booking
    row of this pregnancy with a late gestation, and no late code in it."""
    reasons = []
    if c.late_at_weeks is not None:
        late_weeks = rows[rows["role"] == GESTATION]  # the latest booking row with a late gestation
        reasons.append(
            _gestation(start, c.late_at_weeks)
            if late_weeks.empty
            else f"gestation {late_weeks.iloc[0].gestation} at the booking {_fmt(late_weeks.iloc[0])}, which belongs "
            "to an earlier pregnancy"
        )
    if c.late:
        late = rows[rows["role"] == "late"]
        reasons.append(
            f"the late code {_fmt(late.iloc[0])} belongs to an earlier pregnancy" if len(late) else "no late code"
        )
    return "; ".join(reasons)


def _why_not_coded(c, rows: pd.DataFrame, as_of: date) -> str:
    """Why a coded criterion is not met on one record, from its latest start / end / late rows."""
    start = rows[rows["role"] == "start"]
    end = rows[rows["role"] == "end"]
    if start.empty:
        return "no code from the criterion's codelists on or before the as-of date"
    s = start.iloc[0]
    window = getattr(c, "window", None)
    window_start = window.before(as_of) if window else None
    if not end.empty and pd.Timestamp(end.iloc[0].date) >= pd.Timestamp(s.date):
        if isinstance(c, AntenatalBooking):  # a delivery on the day of the booking ends the pregnancy
            return f"booking {_fmt(s)} was followed by the end code {_fmt(end.iloc[0])}"
        if pd.Timestamp(end.iloc[0].date) > pd.Timestamp(s.date):
            return f"latest start {_fmt(s)} was closed by the later end code {_fmt(end.iloc[0])}"
    if window_start and pd.Timestamp(s.date) < pd.Timestamp(window_start):
        return f"latest code {_fmt(s)} is before the {window} window (from {window_start:%Y-%m-%d})"
    if isinstance(c, AntenatalBooking) and c.late_only:
        return f"booking {_fmt(s)} is not a late booking ({_not_late(c, s, rows)})"
    return f"latest code {_fmt(s)}"


def _describe_record(c, who: str, rows: pd.DataFrame, as_of: date, person: pd.Series | None) -> str:
    if isinstance(c, NewBirth):
        born = pd.Timestamp(person["date_of_birth"]) if person is not None else None
        return f"{who}: born {born:%Y-%m-%d}; the {c.window} window starts {c.window.before(as_of):%Y-%m-%d}"
    if isinstance(c, CodedActive | CodedInWindow | AntenatalBooking):
        return f"{who}: {_why_not_coded(c, rows, as_of)}"
    return f"{who}: see the missed appointments below"


def _exclusion(person: pd.Series, protocol: Protocol, as_of: date) -> str:
    """Why the patient cannot be listed on the as-of date, in words (the engine's ``exclusion`` says which)."""
    if person["exclusion"] == "died before the as-of date":
        died = f"died on {pd.Timestamp(person['date_of_death']):%Y-%m-%d}"
        limit = protocol.population.include_deaths_within
        if limit is None:
            return f"{died}, and the protocol lists no one who has died"
        return f"{died}, more than the protocol's {limit} limit before the as-of date"
    return person["exclusion"]


class _Words:
    """The facts about one patient that several sentences share."""

    def __init__(self, patient_id, protocol, as_of, everyone, listed, evaluation, detail):
        self.patient_id, self.protocol, self.as_of = patient_id, protocol, as_of
        self.person = detail["person"].iloc[0]
        self.detail = detail
        hits = evaluation.hits
        self.mine = hits[hits["patient_id"] == patient_id]
        # Hits this patient's own record gave linked children (pregnancy criteria, parental risk factors ...).
        self.reached = hits[(hits["via_patient_id"] == patient_id) & (hits["patient_id"] != patient_id)]
        people = evaluation.people
        self.expectant = bool(people.loc[people["patient_id"] == patient_id, "expectant"].astype(bool).any())
        self.everyone = everyone
        self.ranks = listed.entries.set_index("patient_id")[["rank", "family_rank"]]
        self.eligible = not isinstance(self.person["exclusion"], str) and bool(self.person["in_age_range"])
        # Whether each criterion met could count for this patient, as the ranking decides it: an adult outside
        # the age range (not the case for her unborn baby) or an excluded patient cannot be listed, however
        # many concern flags there are, so nothing of theirs is held back for want of one.
        scored = evidence_table(replace(evaluation, hits=self.mine), protocol, as_of)
        countable = scored[scored["eligible"]]
        self.countable = set(countable["criterion_id"])
        self.held_back = set(countable.loc[countable["held_back"], "criterion_id"])

    def why_unlisted(self) -> str:
        """Why a criterion met cannot count for this patient: their exclusion, or the age range."""
        if isinstance(self.person["exclusion"], str):
            return _exclusion(self.person, self.protocol, self.as_of)
        population = self.protocol.population
        outside = f"outside the population's age range ({population.min_age}-{population.max_age})"
        if self.expectant:
            return (
                f"{outside}; as the case for her unborn baby, only pregnancy criteria and parental criteria read "
                "from her own record count"
            )
        return outside

    def child_state(self, child: str) -> str:
        if child in self.ranks.index:
            return f"listed, rank {self.ranks.loc[child, 'rank']}"
        return "not listed"

    def carried_to(self, carried: pd.DataFrame) -> str:
        routes = carried.drop_duplicates("patient_id").sort_values("patient_id")
        return "carried to " + ", ".join(
            f"patient {r.patient_id} (as their {r.via_relation}; {self.child_state(r.patient_id)})"
            for r in routes.itertuples()
        )

    def unborn_case(self) -> str:
        of = self.detail["relative_of"].drop_duplicates("child_id")
        not_hers = of[of["pregnancy_not_carried"].notna()]
        children = list(of.loc[of["pregnancy_not_carried"].isna(), "child_id"])
        if not children and not_hers.empty:
            return "no child is linked to this patient on the as-of date, so she is the case for her unborn baby"
        if not children:  # duckdb_families: a pregnancy reaches the woman's own children
            others = "; ".join(f"patient {r.child_id}: she is {r.pregnancy_not_carried}" for r in not_hers.itertuples())
            return f"no child of hers is linked to this patient ({others}), so she is the case for her unborn baby"
        named = ", ".join(f"patient {c}" for c in children)
        return (
            f"none of the children linked to this patient ({named}) can be listed on the as-of date, "
            "so she is the case for her unborn baby"
        )


def _summary(w: _Words) -> list[str]:
    person, as_of, protocol = w.person, w.as_of, w.protocol
    born = pd.Timestamp(person["date_of_birth"])
    if born > pd.Timestamp(as_of):
        who = f"Patient {w.patient_id}, not born by {as_of:%Y-%m-%d} (date of birth {born:%Y-%m-%d})"
    else:
        who = f"Patient {w.patient_id}, age {person['age']} on {as_of:%Y-%m-%d}"
    summary = [f"{who}; family {person['family_id']}."]
    entry = w.everyone.entries[w.everyone.entries["patient_id"] == w.patient_id]
    pregnancy = [c.id for c in protocol.criteria if c.lists_adults]
    carried = w.reached[w.reached["criterion_id"].isin(pregnancy)]
    minor = protocol.ranking.minor_criteria_needed
    threshold = f"needs one significant criterion or {minor} minor one{'s' if minor != 1 else ''} that count"
    if w.patient_id in w.ranks.index:
        rank = w.ranks.loc[w.patient_id]
        summary.append(f"Listed: rank {rank['rank']} (family {rank['family_rank']}), tier {entry.iloc[0]['tier']}.")
    elif isinstance(person["exclusion"], str):
        summary.append(f"Not listed: {_exclusion(person, protocol, as_of)}.")
    elif len(entry):
        summary.append(f"Not listed: below the tier threshold ({threshold}); --all shows them.")
    elif len(carried) and not person["in_age_range"]:
        ids = ", ".join(dict.fromkeys(c for c in pregnancy if c in set(carried["criterion_id"])))
        children = ", ".join(f"patient {c}" for c in sorted(set(carried["patient_id"])))
        summary.append(
            f"Not listed herself: her pregnancy criteria ({ids}) are carried to the children linked to her "
            f"({children}), who are the case for her unborn baby."
        )
    elif not person["in_age_range"] and not w.expectant:
        summary.append(
            f"Not listed: outside the population's age range ({protocol.population.min_age}-"
            f"{protocol.population.max_age}); only pregnancy criteria can list them."
        )
    elif held := [c.id for c in protocol.criteria if c.id in w.held_back]:
        summary.append(
            f"Not listed: {', '.join(held)} met but held back, with no professional-concern flag on the child or "
            f"family ({threshold})."
        )
    else:
        summary.append(f"Not listed: {threshold}.")
    if len(entry):
        row = entry.iloc[0]
        summary.append(f"Score: {row['score_components']}.")
        if row["notes"]:
            summary.append(f"Notes: {row['notes']}.")
    concern = person["concern"] if isinstance(person["concern"], str) else _no_concern(w)
    summary.append(f"Professional concern: {concern}")
    return summary


def _no_concern(w: _Words) -> str:
    """'none', and why not for each concern code on the patient's or a linked relative's record (parents,
    household adults, siblings: whose concern reaches the patient): before its group's window, or closed by a
    later end code (``duckdb_families.concern_table``)."""
    links = w.detail["links"].drop_duplicates("relative_id")
    records = [(w.patient_id, "own record")] + [
        (r.relative_id, f"{r.relation} (patient {r.relative_id})") for r in links.itertuples()
    ]
    latest = w.detail["latest"]
    reasons = []
    for i, group in enumerate(w.protocol.concern.code_groups()):
        rows = latest[latest["criterion_id"] == concern_id(i)]
        for patient, who in records:
            mine = rows[rows["patient_id"] == patient]
            if (mine["role"] == "start").any():
                reasons.append(f"{who}: {_why_not_coded(group, mine, w.as_of)}")
    return f"none ({'; '.join(reasons)})" if reasons else "none"


def _met(w: _Words, c, met: pd.DataFrame, carried: pd.DataFrame) -> CriterionExplanation:
    evidence = w.everyone.evidence
    shown = evidence[(evidence["patient_id"] == w.patient_id) & (evidence["criterion_id"] == c.id)]
    texts = list(shown["text"]) if len(shown) else [_hit_text(r) for r in met.itertuples()]
    if len(shown):
        status = "counted"
    elif c.id in w.held_back:
        status = "held back: needs a professional-concern flag on the child or family"
    elif c.id not in w.countable:
        status = f"met, but this patient cannot be listed for it: {w.why_unlisted()}"
    else:
        status = "met, but this patient cannot be listed for it"
    if c.lists_adults and w.expectant and met["via_patient_id"].isna().any():
        texts.append(w.unborn_case())
    if len(carried):
        texts.append(w.carried_to(carried))
    return CriterionExplanation(c.id, c.label, status, tuple(texts))


def _carried(w: _Words, c, carried: pd.DataFrame) -> CriterionExplanation:
    """Met on this patient's record but counted for the linked children who read it, not for this patient."""
    hit = carried.sort_values("patient_id").iloc[0]
    detail = f" [{hit.detail}]" if isinstance(hit.detail, str) and hit.detail else ""
    return CriterionExplanation(c.id, c.label, CARRIED, (f"own record: {_fmt(hit)}{detail}", w.carried_to(carried)))


def _not_met(w: _Words, c) -> CriterionExplanation:
    pid, as_of, latest = w.patient_id, w.as_of, w.detail["latest"]
    links = w.detail["links"]
    if w.expectant:  # as the case for her unborn baby, parental criteria read her own record
        me = pd.DataFrame([{"relative_id": pid, "relation": "expectant mother (own record)", "role": "parent"}])
        links = pd.concat([me, links], ignore_index=True)
    reasons = []
    mine = latest[(latest["patient_id"] == pid) & (latest["criterion_id"] == c.id)]
    if c.lists_adults and (died := _died_by(w.person, as_of)):  # duckdb_engine._route
        reasons.append(f"own record: not read, since death ends a pregnancy ({died})")
    elif "own" in c.record or c.lists_adults:
        reasons.append(_describe_record(c, "own record", mine, as_of, w.person))
    if _reads_child_side_apart(c):  # read in the own record whatever ``record`` lists (``duckdb_engine._route``)
        child_side = mine[mine["role"] == "reciprocal"].assign(role="start")
        reasons.append(_describe_record(c, "own record (child-side codes)", child_side, as_of, w.person))
    if c.lists_adults:  # carried from an expectant parent or household adult to the children in the population
        relative_roles = ["parent", "household_adult"] if w.eligible else []
    else:
        relative_roles = [r for r in c.record if r != "own"]
    relatives = links[links["role"].isin(relative_roles)].drop_duplicates("relative_id")
    known = w.detail["relatives"].set_index("patient_id")
    for link in relatives.itertuples():
        who = f"{link.relation} (patient {link.relative_id})"
        died = _died_by(known.loc[link.relative_id], as_of) if link.relative_id in known.index else None
        if c.lists_adults and died:
            named = "(died" in link.relation  # the relation of a parent who died says so (duckdb_families)
            reasons.append(f"{who}: not read, since death ends a pregnancy{'' if named else f' ({died})'}")
            continue
        if c.lists_adults and isinstance(link.pregnancy_not_carried, str):  # duckdb_families: a pregnancy reaches
            reasons.append(f"{who}: not read, since a pregnancy reaches the woman's own children and she is "
                           f"{link.pregnancy_not_carried}")  # fmt: skip
            continue
        if link.role == "sibling" and (why := _sibling_not_read(w, link.relative_id)):
            reasons.append(f"{who}: not read, since a sibling's record counts only while the sibling is a "
                           f"child registered here ({why})")  # fmt: skip
            continue
        rows = latest[(latest["patient_id"] == link.relative_id) & (latest["criterion_id"] == c.id)]
        reasons.append(_describe_record(c, who, rows, as_of, None))
    if relative_roles and relatives.empty:
        reasons.append(f"no {' or '.join(r.replace('_', ' ') for r in relative_roles)} linked on the as-of date")
    if isinstance(c, MissedAppointments):
        window_start = c.window.before(as_of)
        reasons.append(
            f"{len(_missed_days(c, pid, window_start, w.detail))} day(s) with a missed appointment or a not-brought "
            f"code since {window_start:%Y-%m-%d}; {c.min_count} needed (1 if {', '.join(c.single_if) or 'never'})"
        )
    return CriterionExplanation(c.id, c.label, "not met", tuple(reasons))


def _died_by(person: pd.Series, as_of: date) -> str | None:
    """'died 2026-10-01' if ``person`` died on or before the as-of date, else None."""
    died = pd.Timestamp(person["date_of_death"]) if pd.notna(person["date_of_death"]) else None
    return f"died {died:%Y-%m-%d}" if died is not None and died <= pd.Timestamp(as_of) else None


def _sibling_not_read(w: _Words, sibling: str) -> str | None:
    """Why the engine does not read ``sibling``'s record (``duckdb_engine._route``: only while the sibling is a
    child registered here, whatever the population's ages), or None when it does."""
    known = w.detail["relatives"]
    row = known[known["patient_id"] == sibling]
    if row.empty:
        return "no record in the patients file"
    sibling_row = row.iloc[0]
    if isinstance(sibling_row["exclusion"], str):
        return sibling_row["exclusion"]
    if sibling_row["age"] >= ADULT_AGE:
        return f"age {sibling_row['age']}: an adult"
    return None


def _missed_days(c: MissedAppointments, patient_id: str, window_start, detail: dict) -> set:
    """The days the criterion counts, as the engine counts them: distinct days in the window with a missed
    appointment (a status of ``c.statuses``) or one of its codes (``latest``'s dates of the criterion)."""
    appts = detail["appointments"]
    missed = appts[appts["status"].isin(c.statuses) & (pd.to_datetime(appts["date"]) >= pd.Timestamp(window_start))]
    days = set(pd.to_datetime(missed["date"]).dt.date)
    latest = detail["latest"]
    own = (latest["patient_id"] == patient_id) & (latest["criterion_id"] == c.id)
    coded = latest[own & (latest["role"] == "start")]
    for dates in coded["dates"].dropna():  # already those in the criterion's window (``_scan_latest``)
        days |= {pd.Timestamp(d).date() for d in dates}
    return days


def _family(w: _Words) -> tuple[str, ...]:
    closest = w.detail["links"].drop_duplicates("relative_id")  # links arrive most specific relationship first
    of = w.detail["relative_of"].drop_duplicates("child_id")  # by child, most specific relationship first
    family = [f"{r.relation}: patient {r.relative_id}" for r in closest.itertuples()]
    family += [f"{r.relation} of patient {r.child_id}" for r in of.itertuples()]
    return tuple(family) or ("no linked relatives",)


def _names_patient(rejects: pd.DataFrame, patient_id: str) -> pd.Series:
    """For each rejected row, whether one of its patient_id columns holds ``patient_id`` (read from the row's
    ``record``, the JSON of its values)."""

    def names(record) -> bool:
        values = json.loads(record) if isinstance(record, str) else {}
        return any(isinstance(values.get(c), str) and values[c].strip() == patient_id for c in PATIENT_ID_COLUMNS)

    return pd.Series([names(r) for r in rejects["record"]], index=rejects.index, dtype=bool)


def _located(row) -> str:
    return f"{row.file}, row {row.row}, column '{row.column}': {row.problem}"


def rejected_patient(rejects: pd.DataFrame, patients_file: str, patient_id: str) -> Problem | None:
    """Why a patient is missing from the extract when ``--skip-bad-rows`` left their row in the patients file
    out: its problems by file, row and column (``None`` if the patient has no such row)."""
    if rejects.empty:
        return None
    rows = rejects[(rejects["file"] == patients_file) & _names_patient(rejects, patient_id)]
    if rows.empty:
        return None
    return Problem(
        "PATIENT_ID",
        "this patient's row in the patients file has a problem, so --skip-bad-rows left it out: "
        + "; ".join(_located(r) for r in rows.itertuples()),
        "fix the row in the extract, then run explain again",
    )


def _left_out(rejects: pd.DataFrame, patient_id: str) -> tuple[str, ...]:
    """What ``--skip-bad-rows`` left out, in words: how many bad rows, how many name this patient, and the first
    few problems (file, row, column and problem, never an identifier), this patient's rows first.

    explain writes no rejects file: it only reads the extract. It says to run build-list, which writes one.
    """
    if rejects.empty:
        return ()
    mine = _names_patient(rejects, patient_id)
    count = len(rejects.drop_duplicates(["file", "row"]))
    named = len(rejects[mine].drop_duplicates(["file", "row"]))
    if count == 1:
        head, naming = "1 bad row was", "it names this patient" if named else "it does not name this patient"
    else:
        head = f"{count} bad rows were"
        naming = f"{named} of them name{'s' if named == 1 else ''} this patient" if named else "none names this patient"
    lines = [
        f"{head} left out of the extract (--skip-bad-rows); {naming}. A link, code or appointment in a bad row "
        "is missing from this explanation, for this patient or a relative."
    ]
    problems = pd.concat([rejects[mine], rejects[~mine]])
    lines += [f"- {_located(r)}" for r in problems.head(PROBLEMS_SHOWN).itertuples()]
    hidden = len(problems) - PROBLEMS_SHOWN
    if hidden > 0:
        lines.append(f"- ... and {hidden} more problem{'s' if hidden != 1 else ''}")
    lines.append("Run casefind build-list with --skip-bad-rows to write every bad row, with its problems, to a file.")
    return tuple(lines)


def explain(
    patient_id: str,
    protocol: Protocol,
    as_of: date,
    everyone: Ranked,
    listed: Ranked,
    evaluation: Evaluation,
    detail: dict,
    rejects: pd.DataFrame | None = None,
) -> Explanation:
    """Word the facts. ``everyone`` is the list with ``--all`` (so every child with a counted criterion has a
    score); ``listed`` is the default list (its ranks are the ones build-list shows); ``rejects`` are the rows
    ``--skip-bad-rows`` left out (``Extract.rejects``), counted in ``left_out``."""
    w = _Words(patient_id, protocol, as_of, everyone, listed, evaluation, detail)
    explained = []
    for c in protocol.criteria:
        met = w.mine[w.mine["criterion_id"] == c.id]
        carried = w.reached[w.reached["criterion_id"] == c.id]
        if len(met):
            explained.append(_met(w, c, met, carried))
        elif len(carried):
            explained.append(_carried(w, c, carried))
        else:
            explained.append(_not_met(w, c))
    left_out = _left_out(rejects, patient_id) if rejects is not None else ()
    return Explanation(patient_id, as_of, tuple(_summary(w)), tuple(explained), _family(w), left_out)
