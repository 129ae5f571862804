"""``casefind explain``: for one patient, every criterion met or not and why, the score arithmetic and the
family. Facts come from the engine (``patient_detail``) and the ranking; this module only words them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from casefind.protocol import AntenatalBooking, CodedActive, CodedInWindow, MissedAppointments, NewBirth, Protocol
from casefind.ranking import Ranked


@dataclass(frozen=True)
class CriterionExplanation:
    criterion_id: str
    label: str
    status: str  # counted | held back (no concern flag) | met, but the patient cannot be listed | not met
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    patient_id: str
    as_of: date
    summary: tuple[str, ...]
    criteria: tuple[CriterionExplanation, ...]
    family: tuple[str, ...]


def _fmt(row) -> str:
    term = row.term if isinstance(row.term, str) and row.term else ""
    return f"{term} ({row.code}) on {pd.Timestamp(row.date):%Y-%m-%d}" if term else f"{row.code} on {row.date}"


def _hit_text(hit) -> str:
    who = f"{hit.via_relation} (patient {hit.via_patient_id})" if isinstance(hit.via_patient_id, str) else "own record"
    return f"{who}: {_fmt(hit)}"


def _why_not_coded(c, rows: pd.DataFrame, as_of: date) -> str:
    """Why a coded criterion is not met on one record, from its latest start / end / late rows."""
    start = rows[rows["role"] == "start"]
    end = rows[rows["role"] == "end"]
    if start.empty:
        return "no code from the criterion's codelists on or before the as-of date"
    s = start.iloc[0]
    window = getattr(c, "window", None)
    window_start = window.before(as_of) if window else None
    if not end.empty and pd.Timestamp(end.iloc[0].date) > pd.Timestamp(s.date):
        return f"latest start {_fmt(s)} was closed by the later end code {_fmt(end.iloc[0])}"
    if window_start and pd.Timestamp(s.date) < pd.Timestamp(window_start):
        return f"latest code {_fmt(s)} is before the {window} window (from {window_start:%Y-%m-%d})"
    if isinstance(c, AntenatalBooking) and c.late_only:
        return f"booking {_fmt(s)} is not a late booking (gestation below {c.late_at_weeks} weeks and no late code)"
    return f"latest code {_fmt(s)}"


def _describe_record(c, who: str, rows: pd.DataFrame, as_of: date, person: pd.Series | None) -> str:
    if isinstance(c, NewBirth):
        born = pd.Timestamp(person["date_of_birth"]) if person is not None else None
        return f"{who}: born {born:%Y-%m-%d}; the {c.window} window starts {c.window.before(as_of):%Y-%m-%d}"
    if isinstance(c, CodedActive | CodedInWindow | AntenatalBooking):
        return f"{who}: {_why_not_coded(c, rows, as_of)}"
    return f"{who}: see the missed appointments below"


def explain(
    patient_id: str,
    protocol: Protocol,
    as_of: date,
    ranked: Ranked,
    listed: set[str],
    hits: pd.DataFrame,
    detail: dict,
) -> Explanation:
    """Word the facts. ``ranked`` is the list with ``--all`` (so every child with a counted criterion has a
    score); ``listed`` is who the default list shows."""
    person = detail["person"].iloc[0]
    links, latest = detail["links"], detail["latest"]
    summary = [
        f"Patient {patient_id}, age {person['age']} on {as_of:%Y-%m-%d}; family {person['family_id']}.",
    ]
    if isinstance(person["exclusion"], str):
        summary.append(f"Cannot be listed: {person['exclusion']}.")
    elif not person["in_age_range"]:
        summary.append(
            f"Outside the population's age range ({protocol.population.min_age}-{protocol.population.max_age}); "
            "only pregnancy criteria can list them."
        )
    entry = ranked.entries[ranked.entries["patient_id"] == patient_id]
    threshold = f"needs one significant criterion or {protocol.ranking.minor_criteria_needed} minor ones that count"
    if len(entry):
        row = entry.iloc[0]
        if patient_id in listed:
            summary.append(f"Listed: rank {row['rank']} (family {row['family_rank']}), tier {row['tier']}.")
        else:
            summary.append(f"Not listed: below the tier threshold ({threshold}); --all shows them.")
        summary.append(f"Score: {row['score_components']}.")
        if row["notes"]:
            summary.append(f"Notes: {row['notes']}.")
    else:
        summary.append(f"Not listed: {threshold}.")
    concern = person["concern"] if isinstance(person["concern"], str) else "none"
    summary.append(f"Professional concern: {concern}")

    mine = hits[hits["patient_id"] == patient_id]
    evidence = ranked.evidence
    explained = []
    for c in protocol.criteria:
        met = mine[mine["criterion_id"] == c.id]
        shown = evidence[(evidence["patient_id"] == patient_id) & (evidence["criterion_id"] == c.id)]
        if len(met):
            texts = tuple(shown["text"]) if len(shown) else tuple(_hit_text(r) for r in met.itertuples())
            if len(shown):
                status = "counted"
            elif c.requires_concern and not person["concerned"]:
                status = "held back: needs a professional-concern flag on the child or family"
            else:
                status = "met, but this patient cannot be listed for it"
            explained.append(CriterionExplanation(c.id, c.label, status, texts))
            continue
        reasons = []
        if "own" in c.record:
            reasons.append(
                _describe_record(
                    c,
                    "own record",
                    latest[(latest["patient_id"] == patient_id) & (latest["criterion_id"] == c.id)],
                    as_of,
                    person,
                )
            )
        relative_roles = [r for r in c.record if r != "own"]
        relatives = links[links["role"].isin(relative_roles)].drop_duplicates("relative_id")
        for link in relatives.itertuples():
            rows = latest[(latest["patient_id"] == link.relative_id) & (latest["criterion_id"] == c.id)]
            reasons.append(_describe_record(c, f"{link.relation} (patient {link.relative_id})", rows, as_of, None))
        if relative_roles and relatives.empty:
            reasons.append(f"no {' or '.join(r.replace('_', ' ') for r in relative_roles)} linked on the as-of date")
        if isinstance(c, MissedAppointments):
            window_start = c.window.before(as_of)
            appts = detail["appointments"]
            missed = appts[
                appts["status"].isin(c.statuses) & (pd.to_datetime(appts["date"]) >= pd.Timestamp(window_start))
            ]
            reasons.append(
                f"{len(missed)} missed appointment(s) since {window_start:%Y-%m-%d}; {c.min_count} needed "
                f"(1 if {', '.join(c.single_if) or 'never'})"
            )
        explained.append(CriterionExplanation(c.id, c.label, "not met", tuple(reasons)))

    closest = links.drop_duplicates("relative_id")  # links arrive most specific relationship first
    family = tuple(f"{r.relation}: patient {r.relative_id}" for r in closest.itertuples()) or ("no linked relatives",)
    return Explanation(patient_id, as_of, tuple(summary), tuple(explained), family)
