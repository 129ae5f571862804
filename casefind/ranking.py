"""Turning an engine's ``Evaluation`` into the ranked, family-grouped discussion list.

Rules (the README's "Ranking" section says the same):

* A criterion **counts** for a patient who is eligible on the as-of date (registered, alive or recently
  died as the protocol says) and in the population's age range — or who is the case for her unborn baby
  (``expectant``). A criterion with ``requires_concern`` counts only when the child, or a parent, household
  adult or sibling linked to the child, has professional concern (an open flag, a concern code in the
  protocol's window, or one of ``concern.criteria`` met on their own record); concern does not travel further
  through the family. Otherwise the criterion is *held back* and only counted in the summary.
* A child **qualifies** with one significant criterion, or with at least ``ranking.minor_criteria_needed``
  minor ones. Others are listed only with ``show_all`` (``--all``), marked as not qualifying.
* **Score** = the sum over criteria met of weight x recency, where recency is 1, or
  0.5 ** (age of the evidence / half_life) when the criterion sets ``half_life``. A criterion reached by
  several routes (mother and father) counts once, with its most recent evidence. Every component is shown.
* **Order**: families by their highest-ranked child; children within a family by score. Ties break by
  the most recent evidence (newest first), then patient_id (text order), so the order is total.
* **Linked adults** read in one order wherever they are shown (a child's ``linked_adults``, the family's
  Adults line, the adults in JSON and Excel): see ``_in_adult_order``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from casefind.frames import isin
from casefind.protocol import Protocol
from casefind.results import LIST_COLUMNS, Evaluation


@dataclass(frozen=True)
class Ranked:
    entries: pd.DataFrame  # LIST_COLUMNS
    evidence: pd.DataFrame  # one row per (child, criterion, route)
    adults: pd.DataFrame  # linked adults of listed children, with what reached the children through them
    held_back: int  # eligible children meeting only concern-gated criteria without a concern flag
    data_gaps: dict[str, int]
    below_threshold: int = 0  # children meeting criteria that count but not the tier rule (listed with --all)


# What the summary of a child reads from the component of each criterion met.
_BEST_COLUMNS = ["patient_id", "criterion_id", "label", "tier", "weight", "date", "recency", "component"]


def _criteria_table(protocol: Protocol, as_of: date) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (
                c.id,
                c.label,
                c.tier,
                c.weight,
                c.requires_concern,
                (as_of - c.half_life.before(as_of)).days if c.half_life else None,
                i,
            )
            for i, c in enumerate(protocol.criteria)
        ],
        columns=["criterion_id", "label", "tier", "weight", "requires_concern", "half_life_days", "order"],
    )


def _joined(values: pd.Series, keys: pd.Series | list[pd.Series], sep: str) -> pd.Series:
    """Join each group's strings with ``sep`` in their current order (a vectorised ``sep.join``); the group is
    ``keys``, or each combination of several ``keys``."""
    return (sep + values.astype(str)).groupby(keys, sort=True).sum().str[len(sep) :]


def _text_or_empty(series: pd.Series) -> pd.Series:
    return series.where(series.notna(), "").astype(str)


def _evidence_text(hits: pd.DataFrame) -> pd.Series:
    """'label: relation (patient X): term (code), date [detail]' for every row, vectorised."""
    term, code = _text_or_empty(hits["term"]), _text_or_empty(hits["code"])
    what = (term + " (" + code + ")").where((code != "") & (term != ""), term + code)
    via_id, via_rel = _text_or_empty(hits["via_patient_id"]), _text_or_empty(hits["via_relation"])
    route = (via_rel + " (patient " + via_id + "): ").where((via_id != "") & (via_id != hits["patient_id"]), "")
    route = route.where((route != "") | (via_rel == ""), via_rel + ": ")
    detail = _text_or_empty(hits["detail"])
    text = hits["label"] + ": " + route + what + ", " + hits["date"].dt.strftime("%Y-%m-%d")
    return text + (" [" + detail + "]").where(detail != "", "")


def evidence_table(evaluation: Evaluation, protocol: Protocol, as_of: date) -> pd.DataFrame:
    """Every hit with its criterion's meta, whether it counts, and its recency-weighted component, in list
    order (the evidence text is added by ``rank``, for listed children only)."""
    return _in_list_order(_scored_hits(evaluation, protocol, as_of))


def _scored_hits(evaluation: Evaluation, protocol: Protocol, as_of: date) -> pd.DataFrame:
    """``evidence_table`` in the engine's order: at ICB scale most hits do not count, so ``rank`` sorts
    only the ones that do."""
    hits = evaluation.hits.merge(_criteria_table(protocol, as_of), on="criterion_id")
    # One row per hit, in hits' order; a left merge looks the ids up faster than reindexing all people.
    flags = ["patient_id", "exclusion", "in_age_range", "expectant", "concerned"]
    person = hits[["patient_id"]].merge(evaluation.people[flags], on="patient_id", how="left")
    # An expectant woman above the age range is the case only for her unborn baby: pregnancy criteria and
    # parental criteria read from her own record, not (say) her own missed appointments.
    for_unborn = (
        hits["criterion_id"].isin([c.id for c in protocol.criteria if c.lists_adults]).to_numpy()
        | (hits["via_patient_id"] == hits["patient_id"]).to_numpy()
    )
    eligible = person["exclusion"].isna().to_numpy() & (
        person["in_age_range"].astype(bool).to_numpy() | (person["expectant"].astype(bool).to_numpy() & for_unborn)
    )
    concerned = person["concerned"].astype(bool).to_numpy()
    hits = hits.assign(
        eligible=eligible,
        held_back=hits["requires_concern"].to_numpy() & ~concerned,
        date=pd.to_datetime(hits["date"]),
    )
    age_days = (pd.Timestamp(as_of) - hits["date"]).dt.days.clip(lower=0)
    recency = 0.5 ** (age_days / hits["half_life_days"].astype(float))
    hits["recency"] = recency.where(hits["half_life_days"].notna(), 1.0)
    hits["component"] = hits["weight"] * hits["recency"]
    return hits


def _in_list_order(hits: pd.DataFrame) -> pd.DataFrame:
    """By child, criterion (protocol order), newest evidence first, then route. pandas sorts on several
    columns stably, so the rows of any subset come out in the order they have in the whole table."""
    return hits.sort_values(["patient_id", "order", "date", "via_patient_id"], ascending=[True, True, False, True])


def number_text(value: float) -> str:
    """A number in full, as JSON writes it, without a whole number's '.0' (150, 110.8845). Python's :g keeps
    six significant digits (110.885) and writes a million as 1e+06."""
    return f"{value:.15g}"


def score_text(score: float) -> str:
    """A score as the list shows it: a whole number as it is (13), any other to two decimals (8.33), as each
    recency-weighted term of ``score_components`` is shown."""
    return f"{score:.0f}" if score == round(score) else f"{score:.2f}"  # (:g would write 1e+06)


def _component_text(best: pd.DataFrame) -> pd.Series:
    """'cp_plan 10' or, with recency, 'parental_domestic_abuse 6x0.748=4.49': the factor to three decimals, so
    that an auditor multiplying what is shown gets the product shown (to two, 6x0.75=4.49 did not add up)."""
    plain = best["criterion_id"] + " " + best["weight"].map(number_text)
    decays = best["recency"] != 1.0  # only these are formatted further: most criteria have no half-life
    if not decays.any():  # needed: .map over no rows gives floats, and floats + "=" raises
        return plain
    decayed = best[decays]
    factor = decayed["recency"].map("{:.3f}".format) + "=" + decayed["component"].map("{:.2f}".format)
    return plain.where(~decays, plain[decays] + "x" + factor)


def rank(
    evaluation: Evaluation, protocol: Protocol, as_of: date, *, show_all: bool = False, full: bool = False
) -> Ranked:
    """Rank the eligible children; see the module docstring for every rule.

    Linked adults are named by relationship and patient id; ``full`` (the full meeting list) adds their
    names to ``linked_adults`` and, as a ``name`` column after ``patient_id``, to ``adults`` (so the family's
    adults read the same everywhere they are shown). Without ``full`` no adult's name is in the result.

    The evidence text never names anyone, even with ``full``: it says whose record a fact came from
    ('mother (patient P9)'), and the adults' text names that adult once; a route can also be a sibling,
    whom ``full`` does not name.
    """
    hits = _scored_hits(evaluation, protocol, as_of)
    counted = _in_list_order(hits[hits["eligible"] & ~hits["held_back"]])
    held = hits.loc[hits["eligible"] & hits["held_back"], "patient_id"]
    # One component per (child, criterion): the most recent route, the first in list order. Only the columns
    # the summary reads are carried along.
    best = counted[_BEST_COLUMNS].drop_duplicates(["patient_id", "criterion_id"])
    if best.empty:
        return _nobody_listed(evaluation, counted, held.nunique(), 0)
    best = best.assign(significant=best["tier"] == "significant", minor=best["tier"] == "minor")
    counts = best.groupby("patient_id", sort=True)[["significant", "minor"]].sum()
    qualifies = (counts["significant"] >= 1) | (counts["minor"] >= protocol.ranking.minor_criteria_needed)
    # A list, not a Series: ``isin`` copies its values with list(), which is slow over Arrow-backed strings.
    listed_ids = (qualifies.index if show_all else qualifies.index[qualifies]).tolist()
    held_back = held[~isin(held, listed_ids)].nunique()

    # Text is built for listed children only: at ICB scale most patients with a hit are not listed.
    best = best[isin(best["patient_id"], listed_ids)]
    if best.empty:
        return _nobody_listed(evaluation, counted, held_back, int((~qualifies).sum()))
    best = best.assign(part=_component_text(best))
    grouped = best.groupby("patient_id", sort=True)
    shown = counted[isin(counted["patient_id"], listed_ids)]  # the evidence of listed children: text for these
    shown = shown.assign(text=_evidence_text(shown))
    key, score = best["patient_id"], grouped["component"].sum()
    summary = pd.DataFrame(
        {
            "score": score.round(4),
            "tier": grouped["significant"].any().map({True: "significant", False: "minor"}),
            "criteria": _joined(best["criterion_id"], key, ";"),
            "reasons": _joined(best["label"], key, "; "),
            "score_components": _joined(best["part"], key, " + ") + " = " + score.map(score_text),
            "latest_evidence": grouped["date"].max(),
            "qualifies": qualifies.reindex(score.index),
            "evidence": _joined(shown["text"], shown["patient_id"], " | "),
        }
    ).reset_index()
    people = evaluation.people[isin(evaluation.people["patient_id"], listed_ids)]
    entries = summary.merge(people.drop(columns=["exclusion", "in_age_range"]), on="patient_id", how="left")
    gaps = (  # of listed children only, like everything from ``shown``
        shown[shown["reciprocal_missing"].astype(bool)]
        .groupby("patient_id")["label"]
        .agg(lambda labels: "; ".join(sorted(set(labels))))
        .to_dict()
    )
    gated = isin(entries["patient_id"], shown.loc[shown["requires_concern"].astype(bool), "patient_id"])
    entries["notes"] = _notes(entries, gaps, as_of, gated)
    entries = _order(entries)
    links = _adult_links(evaluation, listed_ids)
    adults = _adults(evaluation, links, entries, shown)
    if full:
        adults.insert(adults.columns.get_loc("patient_id") + 1, "name", _names(evaluation, adults["patient_id"]))
    entries["linked_adults"] = _linked_adults_text(evaluation, links, entries, shown, full)
    data_gaps = {
        "children under 5 with no linked adult": evaluation.no_linked_adult,
        "listed children whose relative's risk code has no matching code in the child's record": len(gaps),
    }
    below = int((~qualifies).sum()) if not show_all else 0
    return Ranked(entries[list(LIST_COLUMNS)], shown, adults, held_back, data_gaps, below)


def _nobody_listed(evaluation: Evaluation, evidence: pd.DataFrame, held_back: int, below: int) -> Ranked:
    empty = pd.DataFrame(columns=list(LIST_COLUMNS))
    gaps = {"children under 5 with no linked adult": evaluation.no_linked_adult}
    shown = evidence.iloc[0:0].assign(text=pd.Series(dtype=str))
    return Ranked(empty, shown, _adults(evaluation, evaluation.links, empty, evidence), held_back, gaps, below)


def _adult_text(relation: pd.Series, patient_id: pd.Series, risks: pd.Series, names: pd.Series | None = None):
    """'mother (patient P9, Jane Smith): risk factors' — the name only when ``names`` is given."""
    who = relation + " (patient " + patient_id
    if names is not None:
        who = who + names.map(lambda n: f", {n}" if n else "")
    return who + ")" + (": " + risks.astype(str)).where(risks != "", "")


def family_adults_text(adults: pd.DataFrame) -> dict[str, str]:
    """family_id -> every linked adult of the family's listed children, as in ``linked_adults``: named when
    ``adults`` has the ``name`` column ``rank(full=True)`` adds."""
    if adults.empty:
        return {}
    names = adults["name"] if "name" in adults.columns else None
    text = _adult_text(adults["relation"], adults["patient_id"], adults["risk_factors"], names)
    return _joined(text, adults["family_id"], "; ").to_dict()


def _names(evaluation: Evaluation, patient_ids: pd.Series) -> pd.Series:
    """'Given Family' for each of ``patient_ids`` (index kept), or '' when the record has no name."""
    people = evaluation.people
    people = people[isin(people["patient_id"], patient_ids.tolist())].set_index("patient_id")  # these, not all
    name = (_text_or_empty(people["given_name"]) + " " + _text_or_empty(people["family_name"])).str.strip()
    return pd.Series(name.reindex(patient_ids).fillna("").to_numpy(), index=patient_ids.index, dtype=object)


def _adult_links(evaluation: Evaluation, child_ids: list[str]) -> pd.DataFrame:
    """The links from ``child_ids`` to their parents and household adults, most specific relationship first."""
    links = evaluation.links
    return links[links["role"].isin(["parent", "household_adult"]) & isin(links["child_id"], child_ids)]


def _in_adult_order(adults: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """``adults`` (``relative_id``, ``relation``, ``role``) within each ``group`` in the order every list shows
    linked adults: parents (an explicit parent-type link) before household adults and members, then by the
    relationship as written ('carer', 'father', 'mother', 'step parent': alphabetical, so that no spelling of
    a relationship needs a rank of its own), then patient_id. The order depends on nothing but the links, so
    a child's ``linked_adults`` and the family's Adults line agree and every run gives the same.
    """
    keyed = adults.assign(_household=(adults["role"] != "parent").to_numpy())
    keys = [*group, "_household", "relation", "relative_id"]
    return keyed.sort_values(keys, kind="mergesort").drop(columns="_household")


def _linked_adults_text(
    evaluation: Evaluation, links: pd.DataFrame, entries: pd.DataFrame, evidence: pd.DataFrame, full: bool
) -> list:
    """Per child: its linked adults (``links``) as 'mother (patient P9): risk factors', names only when
    ``full``, in ``_in_adult_order``. The risk factors are those that reached this child from that adult
    (``evidence``), not those the adult gave a brother or sister: a household adult's learning disability
    reaches only the children whose parent she is, and the family's Adults line is where the whole is shown."""
    links = links.drop_duplicates(["child_id", "relative_id"])  # links arrive most specific relationship first
    links = _in_adult_order(links, ["child_id"])
    if links.empty:
        return [""] * len(entries)
    names = _names(evaluation, links["relative_id"]) if full else None
    routed = evidence.loc[evidence["via_patient_id"].notna(), ["patient_id", "via_patient_id", "label"]]
    routed = routed.drop_duplicates()
    risk_of = _joined(routed["label"], [routed["patient_id"], routed["via_patient_id"]], "; ").to_dict()
    pairs = zip(links["child_id"].tolist(), links["relative_id"].tolist(), strict=True)
    risks = pd.Series([risk_of.get(pair, "") for pair in pairs], index=links.index, dtype=object)
    text = _adult_text(links["relation"], links["relative_id"], risks, names)
    joined = _joined(text, links["child_id"], "; ")
    return joined.reindex(entries["patient_id"]).fillna("").tolist()


def _notes(entries: pd.DataFrame, gaps: dict[str, str], as_of: date, gated) -> pd.Series:
    """Per child, '; '-separated: died (on or before the as-of date: a list for a past meeting shows what was
    known then), unborn baby, the professional concern a counted criterion needed (``gated``: a boolean per
    entry; a new birth's concern may be the mother's unborn-baby CP plan, and the meeting should see it beside
    the birth), data gaps, below the threshold (vectorised)."""
    gap_labels = entries["patient_id"].map(gaps).astype(object)
    died = pd.to_datetime(entries["date_of_death"])
    parts = [
        ("died " + died.dt.strftime("%Y-%m-%d")).where(died <= pd.Timestamp(as_of)),
        _flag(entries["expectant"], "case for her unborn baby"),
        ("counted with professional concern (" + entries["concern"].astype(object) + ")").where(gated),
        _flag(entries["no_linked_adult"], "data gap: under 5 with no linked adult"),
        ("data gap: no child-side code for " + gap_labels + " (RCGP: code both records)").where(gap_labels.notna()),
        _flag(~entries["qualifies"].astype(bool), "below the listing threshold (shown with --all)"),
    ]
    notes = pd.Series("", index=entries.index, dtype=object)
    for part in parts:
        notes = notes + ("; " + part.astype(object)).fillna("")
    return notes.str[2:]


def _flag(condition: pd.Series, text: str) -> pd.Series:
    return pd.Series(text, index=condition.index, dtype=object).where(condition.fillna(False).astype(bool))


def _order(entries: pd.DataFrame) -> pd.DataFrame:
    """Families by their best child, children by score; ties by newest evidence then patient_id."""
    entries = entries.copy()
    entries["family_id"] = entries["family_id"].fillna("F-" + entries["patient_id"])
    entries = entries.sort_values(
        ["score", "latest_evidence", "patient_id"], ascending=[False, False, True], kind="mergesort"
    ).reset_index(drop=True)
    # Families numbered in the order their best child comes; a stable sort then keeps each family together.
    entries["family_rank"] = entries.groupby("family_id", sort=False).ngroup() + 1
    entries = entries.sort_values(["family_rank"], kind="mergesort").reset_index(drop=True)
    entries["rank"] = range(1, len(entries) + 1)
    entries["date_of_birth"] = pd.to_datetime(entries["date_of_birth"]).dt.date
    entries["latest_evidence"] = pd.to_datetime(entries["latest_evidence"]).dt.date
    return entries


def _adults(evaluation: Evaluation, links: pd.DataFrame, entries: pd.DataFrame, evidence: pd.DataFrame) -> pd.DataFrame:
    """Linked adults (``links``: parents, household adults) of listed children, with what reached the
    children: by family, then in ``_in_adult_order``."""
    columns = ["family_rank", "family_id", "patient_id", "relation", "children", "risk_factors"]
    if entries.empty or evaluation.links.empty:
        return pd.DataFrame(columns=columns)
    family = entries.set_index("patient_id")[["family_rank", "family_id"]]
    links = links.join(family, on="child_id")
    routed = evidence.loc[evidence["via_patient_id"].notna(), ["via_patient_id", "label"]].drop_duplicates()
    reached = _joined(routed["label"], routed["via_patient_id"], "; ")
    keys = ["family_rank", "family_id", "relative_id"]  # an adult belongs to one family (a connected set)
    adults = links.groupby(keys, sort=True)["child_id"].nunique().rename("children").reset_index()
    # 'mother' rather than 'household adult, mother': the shared household adds nothing to an explicit link.
    named = links[links["relation"] != "household adult"].drop_duplicates(["relative_id", "relation"])
    named = named.sort_values(["relative_id", "relation"])
    relation = _joined(named["relation"], named["relative_id"], ", ").to_dict()
    reached = reached.to_dict()
    ids = adults["relative_id"].tolist()  # iterating a list of str, not the Arrow-backed column, is fast
    adults["relation"] = [relation.get(adult, "household adult") for adult in ids]
    adults["risk_factors"] = [reached.get(adult, "") for adult in ids]
    parents = set(links.loc[links["role"] == "parent", "relative_id"].tolist())
    adults["role"] = ["parent" if adult in parents else "household_adult" for adult in ids]
    adults = _in_adult_order(adults, ["family_rank", "family_id"]).reset_index(drop=True)
    return adults.rename(columns={"relative_id": "patient_id"})[columns]
