"""The ``pregnancy_ended`` codelist holds only codes that mean the pregnancy has ended.

It ends the default protocol's pregnancy criteria (antenatal booking, late booking, and an unborn baby on a
CP plan or cause for concern, weight 8). A code that can be recorded while the woman is still pregnant (an
antenatal condition, a threatened or preterm labour that may settle, the fetus's presentation, a complication
"of pregnancy" with no delivery) would silently drop an unborn baby at risk from the list.
"""

from __future__ import annotations

import csv
import re
from datetime import date

import pytest

from casefind import api
from casefind.protocol import default_protocol_path, load_protocol
from tests.conftest import REPO

CODELIST = REPO / "rules" / "codelists" / "pregnancy-ended.csv"

# Wording that says the pregnancy is over: a delivery or birth, labour (which ends in delivery), the
# puerperium, or a termination.
ENDED = re.compile(
    r"deliver|\bborn\b|birth|liveborn|stillborn|\blabou?r\b|intrapartum|puerper|postnatal|postpartum|"
    r"termination|\bbaby\b",
    re.IGNORECASE,
)

# Wording of a state or event that can be recorded while the woman is still pregnant. Each is allowed only
# together with wording that says the pregnancy ended ("Breech presentation - delivered").
ANTENATAL = re.compile(
    r"\bantenatal\b|\bantepartum\b|\bthreatened\b"
    r"|\b(in|during|of|complicating) pregnancy\b|^pregnancy with\b"  # a complication of pregnancy
    r"|presentation|malposition|\blie\b|disproportion"  # the fetus's presentation, lie or fit
    r"|\bfetus\b|^fetal disorder$|\bintrauterine\b",  # the fetus, in utero
    re.IGNORECASE,
)

# Wording that never ends a pregnancy, whatever else the term says.
NEVER_ENDED = re.compile(
    r"before labou?r"  # "Ruptured uterus before labor"
    r"|antenatal (problem|complication)"  # "Shoulder dystocia with antenatal problem": not delivered
    r"|^(premature|preterm|threatened) labou?r$"  # may settle, and the pregnancy goes on
    r"|pregnancy, childbirth and/or"  # groupers that include the pregnancy itself
    r"|condition affecting labou?r and/or|and/or membrane|and/or birth asphyxia",
    re.IGNORECASE,
)


def _rows() -> list[dict[str, str]]:
    with CODELIST.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _antenatal_wording(term: str) -> bool:
    if NEVER_ENDED.search(term):
        return True
    return bool(ANTENATAL.search(term)) and not ENDED.search(term)


@pytest.mark.parametrize(
    ("term", "antenatal"),
    [
        ("Venereal disease in pregnancy", True),
        ("Face presentation of fetus", True),
        ("Premature labor", True),
        ("Brow presentation with antenatal problem", True),
        ("Complication of pregnancy, childbirth and/or puerperium", True),
        ("Fetal or neonatal effect of breech presentation before labor", True),
        ("Breech presentation - delivered", False),
        ("Anemia during pregnancy - baby delivered", False),
        ("Fetal or neonatal effect of face presentation during labor and delivery", False),
        ("Single live birth", False),
    ],
)
def test_the_antenatal_wording_rule_reads_terms_as_intended(term, antenatal):
    assert _antenatal_wording(term) is antenatal


def test_no_term_in_the_list_can_be_recorded_during_an_ongoing_pregnancy():
    rows = _rows()
    assert rows
    offending = [f"{r['code']} {r['term']}" for r in rows if _antenatal_wording(r["term"])]
    assert offending == []


def test_the_file_keeps_its_format_order_and_provenance():
    text = CODELIST.read_text(encoding="utf-8")
    assert text.startswith("code,term,source\n")
    rows = _rows()
    codes = [r["code"] for r in rows]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert all(r["source"].startswith("OpenCodelists user/VickiPalin/pregnancy_delivery_snomed") for r in rows)
    protocol = load_protocol(default_protocol_path())
    assert set(protocol.codelists["pregnancy_ended"].code_values) == set(codes)


def _extract(make_extract, later_code: str, later_date: str):
    return make_extract(
        patients="""
        patient_id | date_of_birth | sex | household_id
        mum        | 1996-01-01    | F   | H1
        """,
        events=f"""
        patient_id | code            | date
        mum        | 169711001       | 2026-05-01
        mum        | 818901000000100 | 2026-06-01
        mum        | {later_code}    | {later_date}
        """,
    )


@pytest.mark.parametrize(
    "antenatal_code",
    [
        "274118001",  # Venereal disease in pregnancy
        "6383007",  # Premature labor (threatened or preterm; may settle)
        "21882006",  # Face presentation of fetus
        "237300009",  # Pregnancy with isoimmunization
        "198609003",  # Complication of pregnancy, childbirth and/or puerperium
    ],
)
def test_an_antenatal_code_later_in_the_pregnancy_keeps_the_unborn_baby_listed(make_extract, antenatal_code):
    """Booked, unborn baby on a CP plan, then a code recorded during the same pregnancy: still pregnant."""
    folder = _extract(make_extract, antenatal_code, "2026-08-01")
    result = api.build_list(folder, as_of=date(2026, 11, 24))
    listed = dict(zip(result.entries["patient_id"], result.entries["criteria"], strict=True))
    assert "mum" in listed
    assert set(listed["mum"].split(";")) >= {"unborn_concern", "antenatal_booking"}


def test_a_delivery_code_from_the_list_still_ends_the_pregnancy(make_extract):
    assert "169826009" in {r["code"] for r in _rows()}  # Single live birth
    folder = _extract(make_extract, "169826009", "2026-08-01")
    result = api.build_list(folder, as_of=date(2026, 11, 24))
    assert "mum" not in set(result.entries["patient_id"])
