"""Turning an engine's ``Evaluation`` into the ranked discussion list.

A patient is listed when they are eligible on the as-of date (registered, alive or recently died as the
protocol says) and meet at least one criterion that applies to them: children's criteria within the
population's age range, ``lists_adults`` criteria (pregnancy) at any age.

Score = the sum of the weights of the criteria met. Order: score (highest first), then the most recent
evidence (newest first), then patient_id (text order) so the order is total and the same on every run.
Tier is ``significant`` when any significant criterion is met, else ``minor``.
"""

from __future__ import annotations

import pandas as pd

from casefind.protocol import Protocol
from casefind.results import LIST_COLUMNS, Evaluation


def _format_evidence(row) -> str:
    parts = [row.label + ":"]
    if isinstance(row.code, str):
        parts.append(f"{row.term} ({row.code})" if isinstance(row.term, str) and row.term else row.code)
    elif isinstance(row.term, str):
        parts.append(row.term)
    parts.append(row.date.strftime("%Y-%m-%d"))
    text = " ".join(parts[:-1]) + ", " + parts[-1]
    if isinstance(row.detail, str) and row.detail:
        text += f" [{row.detail}]"
    return text


def evidence_table(evaluation: Evaluation, protocol: Protocol) -> pd.DataFrame:
    """Hits that count for listing, with each criterion's label, tier and weight."""
    crit = pd.DataFrame(
        [(c.id, c.label, c.tier, c.weight, c.lists_adults, i) for i, c in enumerate(protocol.criteria)],
        columns=["criterion_id", "label", "tier", "weight", "lists_adults", "order"],
    )
    people = evaluation.people[["patient_id", "exclusion", "in_age_range"]]
    hits = evaluation.hits.merge(crit, on="criterion_id").merge(people, on="patient_id")
    counts = hits["exclusion"].isna() & (hits["in_age_range"].astype(bool) | hits["lists_adults"].astype(bool))
    hits = hits[counts].copy()
    hits["date"] = pd.to_datetime(hits["date"])
    hits["text"] = [_format_evidence(r) for r in hits.itertuples()]
    return hits.sort_values(["patient_id", "order"]).drop(columns=["exclusion", "in_age_range", "lists_adults"])


def rank(evaluation: Evaluation, protocol: Protocol) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(entries in LIST_COLUMNS order, evidence rows) for everyone listed."""
    evidence = evidence_table(evaluation, protocol)
    if evidence.empty:
        return pd.DataFrame(columns=list(LIST_COLUMNS)), evidence
    grouped = evidence.groupby("patient_id", sort=True)
    summary = pd.DataFrame(
        {
            "score": grouped["weight"].sum(),
            "tier": grouped["tier"].agg(lambda t: "significant" if (t == "significant").any() else "minor"),
            "criteria": grouped["criterion_id"].agg(";".join),
            "reasons": grouped["label"].agg("; ".join),
            "evidence": grouped["text"].agg(" | ".join),
            "latest_evidence": grouped["date"].max(),
        }
    ).reset_index()
    people = evaluation.people.drop(columns=["exclusion", "in_age_range"])
    entries = summary.merge(people, on="patient_id", how="left")
    entries["notes"] = [f"died {d:%Y-%m-%d}" if pd.notna(d) else "" for d in pd.to_datetime(entries["date_of_death"])]
    entries = entries.sort_values(
        ["score", "latest_evidence", "patient_id"], ascending=[False, False, True], kind="mergesort"
    ).reset_index(drop=True)
    entries["rank"] = range(1, len(entries) + 1)
    entries["date_of_birth"] = pd.to_datetime(entries["date_of_birth"]).dt.date
    entries["latest_evidence"] = entries["latest_evidence"].dt.date
    return entries[list(LIST_COLUMNS)], evidence
