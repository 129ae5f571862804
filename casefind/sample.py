"""A deterministic synthetic GP practice: households, coded records and planted safeguarding cases.

Every person is invented; NHS numbers use the 999 prefix reserved for test data. The same ``patients``,
``seed`` and ``as_of`` always produce byte-identical files (one ``random.Random(seed)`` drives
everything; nothing depends on the clock, hashing or set order).

Planted cases are written on top of a background population whose records hold no code from the default
protocol's codelists, in which no child was born in the last 12 weeks, no child misses more than one
appointment in 12 months and no concern flag is open. So with the default protocol
(``rules/vulnerable-families.yaml``), a child is listed exactly when ``planted`` holds a case for them with
``expect_listed=True``, for exactly those criteria; a pregnancy case planted on a woman is listed on the
children she is linked to (``routed_to``), and on her only when there are none.

The planted families also show each family situation the engine's linking rules handle (see
``casefind/engine/duckdb_families.py``): an ended step-parent link, separated parents, half-siblings with
different surnames in different households, a father who left the household, a father not registered at
the practice, a child under 5 with no linked adult, and a parent's risk code with no child-side code.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from casefind.dates import Duration
from casefind.errors import OptionError
from casefind.files import atomic_write, refuse_existing, write_text
from casefind.schema import TABLES

AS_OF = date(2026, 11, 24)
FORMATS = ("csv", "parquet")
MIN_PATIENTS = 300
PRACTICE = "Z99001"  # not a real ODS code


@dataclass(frozen=True)
class PlantedCase:
    """A patient planted to meet (or narrowly miss) one criterion.

    ``criterion_id`` is a criterion id of the default protocol, or a near-miss label (``cp_plan_ended``,
    ``booking_delivered``) for a patient who must not be listed at all. ``expect_listed`` says whether the
    default protocol lists the criterion for this patient (``False``: a near miss, a concern-gated criterion
    held back because the family has no concern flag, a minor criterion alone below the threshold, or a
    relative whose record must not reach the child). ``routed_to`` holds, for a pregnancy criterion
    (``lists_adults``), the children the woman's hit is carried to; it is empty when she is listed herself.
    ``codes`` are the codes planted for this case, on this patient's record or a linked relative's.
    """

    patient_id: str
    criterion_id: str
    expect_listed: bool
    note: str
    codes: tuple[str, ...] = ()
    routed_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class SampleSummary:
    patients: int
    events: int
    relationships: int
    appointments: int
    concerns: int
    files: tuple[Path, ...]
    planted: tuple[PlantedCase, ...]

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in TABLES}

    def __str__(self) -> str:
        tables = ", ".join(f"{count:,} {name}" for name, count in self.counts.items())
        listed = len(self.expected_listed())
        return f"{tables}; {len(self.planted)} planted cases ({listed} patients expected on the default list)"

    def expected_listed(self) -> dict[str, tuple[str, ...]]:
        """patient_id -> the default-protocol criteria they should be listed for (pregnancies on the children)."""
        listed: dict[str, set[str]] = {}
        for case in self.planted:
            if case.expect_listed:
                for pid in case.routed_to or (case.patient_id,):
                    listed.setdefault(pid, set()).add(case.criterion_id)
        return {pid: tuple(sorted(ids)) for pid, ids in sorted(listed.items())}


# ------------------------------------------------------------------------------------------------ codes
# Planted codes, each taken from the default protocol's codelists (rules/codelists/*.csv) or, for parental
# risk factors, from rules/safeguarding-codes.md sections 1.5-1.10 and 1.14.

CP_PLAN = ("342191000000101", "Subject to child protection plan")
CP_REGISTER = ("160887007", "Child on protection register")
CP_CATEGORY_NEGLECT = ("802271000000100", "Child protection category neglect")
CP_CATEGORY_EMOTIONAL = ("802301000000102", "Child protection category emotional")
CP_FINDING = ("224353004", "Child protection finding")
CP_ENDED = ("342891000000105", "No longer subject to child protection plan")
CP_REMOVED = ("160889005", "Child removed from protection register")
CP_CONFERENCE = ("408770006", "Child protection case conference")  # not in the protocol: context only
LAC = ("764841000000100", "Looked after child")
LAC_FOSTER = ("160871009", "Child in foster care")
LAC_ASSESSMENT = ("764161000000107", "Looked after child initial health assessment")
LAC_ENDED = ("764951000000107", "No longer subject of looked after child arrangement")
CIN = ("135891007", "Child in need")
CIN_PLAN = ("836931000000102", "Subject of child in need plan")
CIN_PLAN_2 = ("326071000000101", "Child in need plan")
CIN_ENDED = ("135890008", "Child no longer in need")
CSE_VICTIM = ("713834002", "Victim of child sexual exploitation")
CCE_RISK = ("1188261000000103", "At risk of criminal exploitation")
MISSING = ("711181000000101", "Notification to safeguarding service of missing child")
CFC_SAFEGUARDING = ("836881000000105", "Child is cause for safeguarding concern")
CFC = ("287441000000101", "Child is cause for concern")
CFC_AT_RISK_NEGLECT = ("704658004", "Child at risk of neglect")
CFC_ENDED = ("793161000000107", "Child no longer cause for concern")
UNBORN_CP = ("818901000000100", "Unborn child subject to child protection plan")
UNBORN_CFC = ("878111000000109", "Unborn child is cause for safeguarding concern")
FAMILY_CP = ("375041000000100", "Family member subject of child protection plan")
FAMILY_CP_REGISTER = ("293371000000108", "Family member on child protection register")
BOOKING = ("169711001", "Antenatal booking examination")
BOOKING_EARLY = ("6551000000108", "Mat booking before 16th week")
BOOKING_17_30 = ("6561000000106", "Mat booking 17-30 weeks")
LATE_BOOKER = ("169594005", "Antenatal care: late booker")
SINGLE_LIVE_BIRTH = ("169826009", "Single live birth")
CAESAREAN = ("11466000", "Cesarean section")

DA_VICTIM = ("879911000000102", "Victim of domestic abuse")
DA_POLICE_REPORT = ("895141000000105", "Police domestic incident report received")
DA_IN_HOUSEHOLD = ("881081000000100", "Domestic abuse victim in household")
DV_HISTORY = ("412732008", "History of domestic violence")
DRUG_ABUSE = ("26416006", "Drug abuse")
OPIOID_DEPENDENCE = ("75544000", "Opioid dependence")
DRUG_MISUSER_IN_HOUSEHOLD = ("713070003", "Drug misuser in household")
ALCOHOL_DEPENDENCE = ("66590003", "Alcohol dependence")
ALCOHOL_ABUSE = ("15167005", "Alcohol abuse")
ALCOHOL_MISUSER_IN_HOUSEHOLD = ("713071004", "Alcohol misuser in household")
POSTNATAL_DEPRESSION = ("58703003", "Postpartum depression")
SCHIZOPHRENIA = ("58214004", "Schizophrenia")
SMI_REGISTER = ("391193001", "On severe mental illness register")
SUICIDE_ATTEMPT = ("82313006", "Suicide attempt")
SELF_HARM_HISTORY = ("314550003", "History of deliberate self harm")
LD_REGISTER = ("416075005", "On learning disability register")
INTELLECTUAL_DISABILITY = ("110359009", "Intellectual disability")
CHILD_NOT_BROUGHT = ("901441000000108", "Child not brought to appointment")

# Background codes: common primary-care concepts (checked with the Verhoeff digit; none in any protocol
# codelist, none a risk factor). (code, term, code_system, value kind)
_S = "snomed"
_CHILD_POOL = (
    (("54150009", "Upper respiratory infection", _S, ""), 16),
    (("65363002", "Otitis media", _S, ""), 9),
    (("195662009", "Acute viral pharyngitis", _S, ""), 6),
    (("49727002", "Cough", _S, ""), 8),
    (("386661006", "Fever", _S, ""), 8),
    (("9826008", "Conjunctivitis", _S, ""), 4),
    (("62315008", "Diarrhea", _S, ""), 4),
    (("271807003", "Eruption of skin", _S, ""), 4),
    (("40275004", "Contact dermatitis", _S, ""), 2),
    (("21522001", "Abdominal pain", _S, ""), 4),
    (("410620009", "Well child visit", _S, ""), 6),
    (("27113001", "Body weight", _S, "weight"), 8),
    (("50373000", "Body height", _S, "height"), 5),
    (("162673000", "General examination of patient", _S, ""), 4),
)
_ADULT_POOL = (
    (("75367002", "Blood pressure", _S, "bp"), 14),
    (("27113001", "Body weight", _S, "weight"), 7),
    (("60621009", "Body mass index", _S, "bmi"), 5),
    (("54150009", "Upper respiratory infection", _S, ""), 7),
    (("444814009", "Viral sinusitis", _S, ""), 4),
    (("10509002", "Acute bronchitis", _S, ""), 3),
    (("68566005", "Urinary tract infectious disease", _S, ""), 3),
    (("25064002", "Headache", _S, ""), 4),
    (("279039007", "Low back pain", _S, ""), 5),
    (("57676002", "Joint pain", _S, ""), 4),
    (("235595009", "Gastroesophageal reflux disease", _S, ""), 3),
    (("267036007", "Dyspnea", _S, ""), 2),
    (("422587007", "Nausea", _S, ""), 2),
    (("185349003", "Encounter for check up", _S, ""), 6),
    (("390906007", "Follow-up encounter", _S, ""), 6),
    (("86198006", "Influenza vaccination", _S, ""), 3),
    (("271737000", "Anemia", _S, ""), 1),
)
_SMOKING = (
    ("266919005", "Never smoked tobacco", _S, ""),
    ("8517006", "Ex-smoker", _S, ""),
    ("77176002", "Smoker", _S, ""),
)
_CONTRACEPTION = (
    ("169553002", "Insertion of subcutaneous contraceptive", _S, ""),
    ("65200003", "Insertion of intrauterine contraceptive device", _S, ""),
)
# Chronic conditions: (name, diagnosis, follow-up codes, Read v2 equivalent of the diagnosis)
_CONDITIONS = {
    "asthma": (("195967001", "Asthma"), (("390906007", "Follow-up encounter"),), ("H33..", "Asthma")),
    "eczema": (("24079001", "Atopic dermatitis"), (("43116000", "Eczema"),), None),
    "adhd": (("406506008", "Attention deficit hyperactivity disorder"), (), None),
    "hypertension": (
        ("38341003", "Hypertensive disorder"),
        (("75367002", "Blood pressure"),),
        ("G20..", "Essential hypertension"),
    ),
    "diabetes": (
        ("44054006", "Diabetes mellitus type 2"),
        (("27113001", "Body weight"),),
        ("C10F.", "Type 2 diabetes mellitus"),
    ),
    "hyperlipidaemia": (("55822004", "Hyperlipidemia"), (), None),
    "osteoarthritis": (("396275006", "Osteoarthritis"), (("57676002", "Joint pain"),), None),
    "copd": (("13645005", "Chronic obstructive lung disease"), (("267036007", "Dyspnea"),), None),
    "af": (("49436004", "Atrial fibrillation"), (), None),
    "chd": (("53741008", "Coronary arteriosclerosis"), (), None),
    "epilepsy": (("84757009", "Epilepsy"), (), None),
}
_READ2_BP = ("246..", "O/E - blood pressure reading", "read2", "bp")
_READ2_BEFORE = date(2016, 4, 1).toordinal()  # practices moved from Read v2 to SNOMED CT around then
VACCINATION = ("33879002", "Administration of vaccine to produce active immunity", _S, "")
MMR = ("38598009", "Measles-mumps-rubella vaccination", _S, "")

CLINICIANS_GP = ("GP01", "GP02", "GP03", "GP04", "GP05", "GP06")
CLINICIANS_NURSE = ("PN01", "PN02", "PN03", "HCA1")
CLINICIANS_HV = ("HV01", "HV02")
CLINICIANS_ALL = CLINICIANS_GP + CLINICIANS_NURSE + CLINICIANS_HV

_FAMILY_NAMES = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson Evans Walker "
    "White Roberts Green Hall Wood Jackson Clarke Khan Lewis Harris Clark Allen Young Martin Hughes Edwards "
    "Moore King Lee Turner Hill Ahmed Scott Cooper Ward Morris Baker Begum Harrison Morgan Mitchell Kelly "
    "Shaw Cook Bell Murphy Richardson Bailey Carter Price Phillips Adams Campbell Parker Singh Dixon Hussain "
    "Kaur Mason Ali Fletcher Chapman Nowak Kowalski Okafor Mensah Nguyen Rossi Silva Dunn Lloyd Barker Hunt"
).split()
_GIVEN_F = (
    "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Sophia Grace Freya Florence Willow Evie Emily Poppy Ella "
    "Aisha Zara Maya Ruby Hannah Chloe Jessica Sarah Emma Laura Rebecca Rachel Claire Helen Susan Karen "
    "Julie Margaret Patricia Jean Sandra Fatima Amira Nadia Priya Anna Zofia Chiamaka Abena Mai Giulia"
).split()
_GIVEN_M = (
    "Oliver George Noah Arthur Muhammad Leo Oscar Harry Jack Charlie Freddie Jacob Thomas Alfie Theo Henry "
    "Archie Joshua Daniel James William Samuel Adam Ryan Liam Matthew David Paul Mark Andrew Stephen Peter "
    "John Michael Robert Ian Gary Kevin Imran Omar Ravi Arjun Jakub Piotr Chidi Kwame Minh Marco"
).split()
_ADULT_AGE_BANDS = (
    (18, 29, 17),
    (30, 39, 17),
    (40, 49, 16),
    (50, 59, 16),
    (60, 69, 13),
    (70, 79, 12),
    (80, 96, 9),
)


# ------------------------------------------------------------------------------------------------ model


class _Person:
    __slots__ = (
        "pid",
        "nhs",
        "family",
        "given",
        "dob",
        "sex",
        "dod",
        "reg_from",
        "reg_to",
        "household",
        "conditions",
        "quiet",
    )

    def __init__(self, family: str, given: str, dob: int, sex: str, household: str):
        self.pid = ""
        self.nhs = ""
        self.family = family
        self.given = given
        self.dob = dob
        self.sex = sex
        self.dod: int | None = None
        self.reg_from: int | None = None
        self.reg_to: int | None = None
        self.household = household
        self.conditions: tuple[str, ...] = ()
        self.quiet = False  # no background appointments that could look like a pattern of missed ones


@dataclass
class _Case:
    person: _Person
    criterion_id: str
    expect_listed: bool
    note: str
    codes: tuple[str, ...] = ()
    routed_to: tuple[_Person, ...] = ()


@dataclass
class _Practice:
    rng: random.Random
    as_of: date
    households: list[list[_Person]] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # (person, code, date, term, system, value, clinician)
    relationships: list[tuple] = field(default_factory=list)  # (person, related, relationship, start, end)
    appointments: list[tuple] = field(default_factory=list)  # (person, date, status, clinician)
    concerns: list[tuple] = field(default_factory=list)  # (person, raised_on, raised_by, resolved_on, note)
    cases: list[_Case] = field(default_factory=list)
    unregistered: list[_Person] = field(default_factory=list)  # relatives with no patients row
    _household_seq: int = 0

    # ---- dates
    @property
    def today(self) -> int:
        return self.as_of.toordinal()

    def ago(self, *, days: int = 0, weeks: int = 0, months: int = 0, years: int = 0) -> int:
        day = self.as_of
        if months or years:
            day = Duration(months + 12 * years, "month").before(day)
        return (day - timedelta(days=days + 7 * weeks)).toordinal()

    def born_aged(self, years: int, months: int = 0, days: int = 0) -> int:
        """A date of birth giving this exact age (years, months and days ago)."""
        return self.ago(years=years, months=months, days=days)

    # ---- people
    def new_household(self) -> str:
        self._household_seq += 1
        return f"H{self._household_seq:05d}"

    def person(self, sex: str, dob: int, household: str, family: str | None = None) -> _Person:
        rng = self.rng
        given = rng.choice(_GIVEN_F if sex == "F" else _GIVEN_M)
        return _Person(family or rng.choice(_FAMILY_NAMES), given, dob, sex, household)

    def adult(self, sex: str, household: str, family: str | None = None, age: tuple[int, int] = (18, 96)) -> _Person:
        lo, hi = age
        dob = self.today - self.rng.randint(lo * 365 + 30, hi * 365 + 300)
        return self.person(sex, dob, household, family)

    def child(self, household: str, family: str, age_days: tuple[int, int]) -> _Person:
        return self.person(self.rng.choice("FM"), self.today - self.rng.randint(*age_days), household, family)

    def add_household(self, members: list[_Person]) -> list[_Person]:
        self.households.append(members)
        return members

    def relate(
        self,
        person: _Person,
        related: _Person,
        relationship: str,
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        self.relationships.append((person, related, relationship, start, end))

    def siblings(self, children: list[_Person]) -> None:
        for a in children:
            for b in children:
                if a is not b:
                    self.relate(a, b, "sibling")

    def event(
        self,
        person: _Person,
        code: tuple[str, str],
        day: int,
        value: str = "",
        clinician: str | None = None,
        system: str = "snomed",
    ) -> str:
        self.events.append((person, code[0], day, code[1], system, value, clinician or self.rng.choice(CLINICIANS_GP)))
        return code[0]

    def plant(
        self,
        person: _Person,
        criterion: str,
        listed: bool,
        note: str,
        codes: tuple[str, ...] = (),
        routed_to: tuple[_Person, ...] = (),
    ) -> None:
        self.cases.append(_Case(person, criterion, listed, note, tuple(dict.fromkeys(codes)), routed_to))


# ------------------------------------------------------------------------------------- background people


def _background_household(p: _Practice) -> list[_Person]:
    rng = p.rng
    hh = p.new_household()
    kind = rng.choices(
        ("single", "couple", "couple_kids", "single_parent", "blended", "elderly", "kinship"),
        cum_weights=(27, 52, 69, 76, 80, 99, 100),
    )[0]
    members: list[_Person] = []
    if kind in ("single", "couple", "elderly"):
        age = (65, 96) if kind == "elderly" else _adult_age(rng)
        first = p.adult(rng.choice("FM"), hh, age=age)
        members.append(first)
        if kind != "single" and rng.random() < (0.9 if kind == "couple" else 0.55):
            partner_sex = "F" if first.sex == "M" or rng.random() < 0.04 else "M"
            same_name = rng.random() < 0.6
            partner = p.adult(partner_sex, hh, first.family if same_name else None, age=age)
            members.append(partner)
        return members
    if kind == "kinship":
        carer = p.adult("F", hh, age=(52, 75))
        members.append(carer)
        kids = _children(p, hh, rng.choice(_FAMILY_NAMES), rng.randint(1, 2), max_age_years=17)
        for kid in kids:
            p.relate(kid, carer, "carer", start=max(kid.dob, p.today - rng.randint(200, 3000)))
        p.siblings(kids)
        return members + kids
    mother = p.adult("F", hh, age=(20, 50))
    father = None
    if kind in ("couple_kids", "blended"):
        father = p.adult("M", hh, age=(21, 55))
        if rng.random() < 0.7:
            mother.family = father.family
    oldest = min(17, (p.today - mother.dob) // 365 - 18)
    n_kids = rng.choices((1, 2, 3, 4, 5), cum_weights=(45, 85, 96, 99, 100))[0]
    kids_family = mother.family if kind != "blended" else rng.choice(_FAMILY_NAMES)
    kids = _children(p, hh, kids_family, n_kids, max_age_years=max(0, oldest))
    members = [mother] + ([father] if father else []) + kids
    recorded = rng.random() < 0.75  # relationships are often not recorded at all
    for kid in kids:
        if recorded:
            p.relate(kid, mother, "mother")
            if kind == "couple_kids":
                p.relate(kid, father, "father")
            elif kind == "blended":
                p.relate(kid, father, "step-parent", start=max(kid.dob, p.today - rng.randint(100, 2500)))
    if recorded:
        p.siblings(kids)
    if kind == "single_parent" and kids and rng.random() < 0.4:
        # the children's father lives elsewhere (another household, maybe another surname)
        dad_hh = p.new_household()
        dad = p.adult("M", dad_hh, kids[0].family if rng.random() < 0.5 else None, age=(22, 58))
        p.add_household([dad])
        for kid in kids:
            p.relate(kid, dad, "father", end=(p.today - rng.randint(30, 2000)) if rng.random() < 0.3 else None)
    return members


def _adult_age(rng: random.Random) -> tuple[int, int]:
    lo, hi, _ = rng.choices(_ADULT_AGE_BANDS, cum_weights=_cum([w for *_, w in _ADULT_AGE_BANDS]))[0]
    return lo, hi


def _cum(weights: list[int]) -> list[int]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


def _children(p: _Practice, hh: str, family: str, n: int, max_age_years: int) -> list[_Person]:
    # background children are at least 12 weeks old: births in the new-birth window are all planted
    top = max(90, max_age_years * 365 + 300)
    return [p.child(hh, family, (84, top)) for _ in range(n)]


def _registration(p: _Practice, members: list[_Person], moved_away: bool) -> None:
    rng = p.rng
    moved_in = p.today - rng.randint(60, 25 * 365)
    left = p.today - rng.randint(14, 5 * 365) if moved_away else None
    for person in members:
        if person.reg_from is None:
            start = (
                max(person.dob, moved_in) if rng.random() < 0.8 else max(person.dob, p.today - rng.randint(60, 9000))
            )
            person.reg_from = min(start, p.today - 1, (person.reg_to or p.today) - 1)
        if left is not None and person.reg_to is None:
            person.reg_to = max(left, person.reg_from + 1)


# ------------------------------------------------------------------------------------- background records


def _value(rng: random.Random, kind: str, person: _Person, day: int) -> str:
    if kind == "bp":
        return f"{rng.randint(104, 168)}/{rng.randint(62, 98)}"
    if kind == "bmi":
        return f"{rng.uniform(18.5, 36.0):.1f}"
    age = (day - person.dob) / 365.25
    if kind == "weight":
        kg = 3.4 + age * 2.6 if age < 16 else rng.uniform(50, 105)
        return f"{kg * rng.uniform(0.9, 1.1):.1f}"
    if kind == "height":
        return f"{min(180.0, 50 + age * 6.2) * rng.uniform(0.96, 1.04):.0f}"
    return ""


def _conditions(rng: random.Random, age: int) -> tuple[str, ...]:
    found = []
    if rng.random() < 0.11:
        found.append("asthma")
    if age < 18:
        if rng.random() < 0.15:
            found.append("eczema")
        if age >= 6 and rng.random() < 0.04:
            found.append("adhd")
    else:
        risk = min(1.0, max(0.0, (age - 30) / 50))
        for name, base in (
            ("hypertension", 0.45),
            ("diabetes", 0.16),
            ("hyperlipidaemia", 0.25),
            ("osteoarthritis", 0.3),
            ("copd", 0.08),
            ("af", 0.08),
            ("chd", 0.1),
        ):
            if rng.random() < base * risk:
                found.append(name)
    if rng.random() < 0.01:
        found.append("epilepsy")
    return tuple(found)


def _background_events(p: _Practice, person: _Person) -> None:
    rng = p.rng
    end = min(p.today, person.reg_to or p.today, person.dod or p.today)
    start = max(person.dob, p.today - 15 * 365)
    if end <= start:
        return
    age = (p.today - person.dob) // 365
    person.conditions = _conditions(rng, age)
    events = p.events
    choose_clinician = rng.choice

    # childhood immunisations on the schedule (8, 12, 16 weeks; MMR at 1 year and 3 years 4 months)
    if age < 18:
        for offset, code in (
            (56, VACCINATION),
            (84, VACCINATION),
            (112, VACCINATION),
            (365, MMR),
            (1220, MMR),
            (5110, VACCINATION),
        ):
            day = person.dob + offset + rng.randint(0, 20)
            if start <= day <= end and rng.random() < 0.93:
                events.append((person, code[0], day, code[1], code[2], "", choose_clinician(CLINICIANS_NURSE)))

    years = (end - start) / 365.25
    rate = 2.4 if age < 5 else 1.3 if age < 18 else 2.6 if age < 50 else 3.8 if age < 70 else 5.4
    n = int(rng.gammavariate(2.0, rate * min(years, 15) / 2.0)) + 1
    pool, cum = (_CHILD_POOL_CODES, _CHILD_POOL_CUM) if age < 18 else (_ADULT_POOL_CODES, _ADULT_POOL_CUM)
    conditions = [_CONDITIONS[c] for c in person.conditions]
    span = end - start
    for _ in range(n):
        day = start + int(span * rng.random())
        if conditions and rng.random() < 0.3:
            diagnosis, follow_ups, read2 = rng.choice(conditions)
            code = rng.choice(follow_ups) if follow_ups and rng.random() < 0.5 else diagnosis
            if code is diagnosis and read2 and day < _READ2_BEFORE and rng.random() < 0.5:
                entry = (read2[0], read2[1], "read2", "")
            else:
                entry = (code[0], code[1], _S, "bp" if code[0] == "75367002" else "")
        else:
            entry = rng.choices(pool, cum_weights=cum)[0]
            if entry[0] == "75367002" and day < _READ2_BEFORE and rng.random() < 0.4:
                entry = _READ2_BP
        value = _value(rng, entry[3], person, day) if entry[3] else ""
        clinician = choose_clinician(CLINICIANS_HV if age < 5 and rng.random() < 0.3 else CLINICIANS_ALL)
        events.append((person, entry[0], day, entry[1], entry[2], value, clinician))

    if age >= 16:
        status = _SMOKING[rng.choices((0, 1, 2), cum_weights=(60, 80, 100))[0]]
        events.append(
            (
                person,
                status[0],
                start + int(span * rng.random()),
                status[1],
                _S,
                "",
                choose_clinician(CLINICIANS_NURSE),
            )
        )
    if person.sex == "F" and 16 <= age <= 48 and rng.random() < 0.25:
        method = rng.choice(_CONTRACEPTION)
        day = max(start, p.today - rng.randint(30, 6 * 365))
        if day <= end:
            events.append((person, method[0], day, method[1], _S, "", choose_clinician(CLINICIANS_NURSE)))


_CHILD_POOL_CODES = tuple(e for e, _ in _CHILD_POOL)
_CHILD_POOL_CUM = _cum([w for _, w in _CHILD_POOL])
_ADULT_POOL_CODES = tuple(e for e, _ in _ADULT_POOL)
_ADULT_POOL_CUM = _cum([w for _, w in _ADULT_POOL])


def _background_appointments(p: _Practice, person: _Person) -> None:
    rng = p.rng
    end = min(p.today, person.reg_to or p.today, person.dod or p.today)
    start = max(person.dob, p.today - 3 * 365, person.reg_from or person.dob)
    if end <= start:
        return
    age = (p.today - person.dob) // 365
    child = age < 18
    per_year = 3.0 if age < 5 else 1.4 if child else 2.6 if age < 65 else 4.5
    n = int(rng.gammavariate(1.5, per_year * (end - start) / 365 / 1.5))
    missed_recently = False
    year_ago = p.today - 365
    for day in sorted(start + int((end - start) * rng.random()) for _ in range(n)):
        r = rng.random()
        if r < 0.87:
            status = "attended"
        elif r < 0.92:
            status = "cancelled_by_patient"
        elif r < 0.95:
            status = "cancelled_by_practice"
        elif child:
            # background children miss at most one appointment a year: patterns of missed ones are planted
            if person.quiet or (day >= year_ago and missed_recently):
                status = "attended"
            else:
                status = "was_not_brought" if rng.random() < 0.4 else "did_not_attend"
                missed_recently = missed_recently or day >= year_ago
        else:
            status = "did_not_attend"
        p.appointments.append((person, day, status, rng.choice(CLINICIANS_ALL)))
    if person.reg_to is None and person.dod is None and rng.random() < 0.08:
        p.appointments.append((person, p.today + rng.randint(1, 28), "booked", rng.choice(CLINICIANS_ALL)))


# ------------------------------------------------------------------------------------------ planted cases


def _planted_family(
    p: _Practice,
    *,
    mother_age: tuple[int, int] = (24, 40),
    father: str | None = "resident",
    kids: tuple[tuple[int, int], ...] = ((4, 9),),
    kids_family: str | None = None,
) -> tuple:
    """A household for planted cases: mother, optional father, children aged (years, months) ago each.

    ``father``: "resident" (same household), "step" (resident step-parent, another surname), "elsewhere"
    (another household) or None.
    """
    rng = p.rng
    hh = p.new_household()
    oldest = max((years for years, _ in kids), default=0)
    youngest_mother = max(mother_age[0], oldest + 19)
    mother_age = (youngest_mother, max(mother_age[1], youngest_mother + 6))
    mother = p.adult("F", hh, age=mother_age)
    dad = None
    members = [mother]
    if father == "resident":
        dad = p.adult("M", hh, mother.family, age=(mother_age[0] + 1, mother_age[1] + 6))
        members.append(dad)
    elif father == "step":
        dad = p.adult("M", hh, age=(mother_age[0] + 1, mother_age[1] + 8))
        while dad.family == mother.family:
            dad.family = rng.choice(_FAMILY_NAMES)
        members.append(dad)
    family = kids_family or mother.family
    children = []
    for years, months in kids:
        child = p.person(rng.choice("FM"), p.born_aged(years, months, rng.randint(0, 20)), hh, family)
        children.append(child)
        p.relate(child, mother, "mother")
        if father == "resident":
            p.relate(child, dad, "father")
        elif father == "step":
            p.relate(child, dad, "step-parent", start=p.ago(months=rng.randint(8, 40)))
    p.siblings(children)
    p.add_household(members + children)
    if father == "elsewhere":
        dad = p.adult("M", p.new_household(), family if rng.random() < 0.5 else None, age=(24, 50))
        p.add_household([dad])
        for child in children:
            p.relate(child, dad, "father")
    return mother, dad, children


def _plant_protocol_cases(p: _Practice) -> None:
    rng = p.rng
    ago = p.ago

    # --- cp_plan: a current plan, a re-started plan, an end code on the start day, a recent death
    mother, dad, (a, b, c) = _planted_family(p, kids=((6, 2), (3, 5), (10, 8)))
    cp_codes = (p.event(a, CP_PLAN, ago(months=4)), p.event(a, CP_CATEGORY_NEGLECT, ago(months=4)))
    p.event(a, CP_CONFERENCE, ago(months=4, days=3))
    p.plant(
        a,
        "cp_plan",
        True,
        "CP plan (neglect) started 4 months ago; siblings carry the family-member code",
        cp_codes,
    )
    p.appointments.append((a, ago(months=2, days=6), "was_not_brought", "PN01"))
    p.plant(a, "was_not_brought", True, "1 was-not-brought appointment: one is enough on a CP plan")
    for sib in (b, c):
        code = p.event(sib, FAMILY_CP, ago(months=4), clinician="HV01")
        p.plant(
            sib,
            "family_member_cp_plan",
            True,
            "sibling on a CP plan (family-member code on own record)",
            (code,),
        )
        p.plant(sib, "sibling_cp_plan", True, "sibling on a CP plan (recorded sibling, same household)", cp_codes)

    # half-siblings with different surnames in different households, linked only through their father
    _, dad, (child,) = _planted_family(p, father="elsewhere", kids=((8, 3),))
    while dad.family == child.family:
        dad.family = rng.choice(_FAMILY_NAMES)
    half = p.person(rng.choice("FM"), p.born_aged(4, 10), dad.household, dad.family)
    _household_of(p, dad).append(half)
    p.relate(half, dad, "father")
    code = p.event(half, CP_PLAN, ago(months=6))
    p.plant(
        half,
        "cp_plan",
        True,
        "CP plan 6 months ago; lives with father, half-sibling lives elsewhere",
        (code,),
    )
    p.plant(
        child,
        "sibling_cp_plan",
        True,
        "half-sibling (same father, another surname and household, no sibling link recorded) on a CP plan",
        (code,),
    )
    code = p.event(child, FAMILY_CP_REGISTER, ago(months=5), clinician="GP04")
    p.plant(child, "family_member_cp_plan", True, "half-sibling in another household on a CP plan", (code,))

    _, _, (child,) = _planted_family(p, father="step", kids=((11, 3),))
    codes = (
        p.event(child, CP_REGISTER, ago(years=7)),
        p.event(child, CP_REMOVED, ago(years=6)),
        p.event(child, CP_PLAN, ago(months=7)),
        p.event(child, CP_CATEGORY_EMOTIONAL, ago(months=7)),
    )
    p.plant(
        child,
        "cp_plan",
        True,
        "old register entry ended 6 years ago; new CP plan 7 months ago (latest wins)",
        codes,
    )

    _, _, (child,) = _planted_family(p, father="elsewhere", kids=((2, 1),))
    codes = (p.event(child, CP_PLAN, ago(months=5)), p.event(child, CP_ENDED, ago(months=5)))
    p.plant(
        child,
        "cp_plan",
        True,
        "end code on the same day as the start is not later: stays listed to check",
        codes,
    )

    _, _, (child,) = _planted_family(p, kids=((4, 6),))
    child.dod = ago(months=1)
    codes = (p.event(child, CP_FINDING, ago(months=9)), p.event(child, CP_PLAN, ago(months=9)))
    p.plant(child, "cp_plan", True, "on a CP plan, died 1 month ago (within the protocol's 3 months)", codes)

    # --- looked_after: with foster carers (another surname), via kinship care, long-standing
    for years, code, note in (
        (8, LAC, "looked after for 1 year, lives with foster carers"),
        (13, LAC_FOSTER, "in foster care 3 years, LAC health assessment"),
        (1, LAC, "looked-after baby placed 5 months ago"),
    ):
        hh = p.new_household()
        carer = p.adult("F", hh, age=(40, 62))
        carer2 = p.adult("M", hh, carer.family, age=(42, 65))
        child = p.person(rng.choice("FM"), p.born_aged(years, rng.randint(1, 10)), hh)
        while child.family == carer.family:
            child.family = rng.choice(_FAMILY_NAMES)
        p.add_household([carer, carer2, child])
        placed = ago(years=1) if years == 8 else ago(years=3) if years == 13 else ago(months=5)
        p.relate(child, carer, "carer", start=placed)
        p.relate(child, carer2, "carer", start=placed)
        planted = [p.event(child, code, placed)]
        if years == 13:
            planted.append(p.event(child, LAC_ASSESSMENT, placed + 20))
        child.reg_from = placed
        p.plant(child, "looked_after", True, note, tuple(planted))

    # --- child_in_need
    for kids, code, months in (((7, 0), CIN, 3), ((14, 4), CIN_PLAN, 11), ((5, 9), CIN_PLAN_2, 20)):
        _, _, (child,) = _planted_family(p, father=rng.choice(("resident", "step", None)), kids=(kids,))
        planted = p.event(child, code, ago(months=months))
        p.plant(child, "child_in_need", True, f"child in need code {months} months ago, not ended", (planted,))

    # --- exploitation (2-year window)
    for age, code, months in ((15, CSE_VICTIM, 6), (16, CCE_RISK, 14), (13, MISSING, 23)):
        _, _, (child,) = _planted_family(p, mother_age=(34, 48), father=None, kids=((age, 5),))
        planted = p.event(child, code, ago(months=months))
        p.plant(child, "exploitation", True, f"exploitation code {months} months ago (window 2 years)", (planted,))

    # --- cause_for_concern (coded in the last 2 years, not ended)
    _, _, (child,) = _planted_family(p, kids=((9, 1),))
    planted = (p.event(child, CFC_SAFEGUARDING, ago(months=2)),)
    p.plant(child, "cause_for_concern", True, "cause for safeguarding concern 2 months ago", planted)
    _, _, (child,) = _planted_family(p, father="step", kids=((3, 7),))
    planted = (p.event(child, CFC, ago(months=18)),)
    p.plant(child, "cause_for_concern", True, "cause for concern 18 months ago (window 2 years)", planted)
    _, _, (child,) = _planted_family(p, father=None, kids=((12, 0),))
    planted = (
        p.event(child, CFC, ago(years=3)),
        p.event(child, CFC_ENDED, ago(months=30)),
        p.event(child, CFC_AT_RISK_NEGLECT, ago(months=3)),
    )
    p.plant(
        child,
        "cause_for_concern",
        True,
        "concern ended 30 months ago, new at-risk-of-neglect code 3 months ago",
        planted,
    )

    # --- pregnant women: unborn concern, bookings, late bookings. A woman with no children is listed
    # herself; otherwise the pregnancy is carried to the children she is linked to (issue 3).
    for age, code, months, weeks in ((19, UNBORN_CP, 2, "11"), (27, UNBORN_CFC, 4, "10")):
        hh = p.new_household()
        woman = p.adult("F", hh, age=(age, age))
        p.add_household([woman])
        booking = p.event(woman, BOOKING, ago(months=months, weeks=2), value=weeks, clinician="PN01")
        planted = p.event(woman, code, ago(months=months))
        p.plant(
            woman, "unborn_concern", True, f"unborn baby concern coded {months} months ago; no children", (planted,)
        )
        p.plant(woman, "antenatal_booking", True, f"booked at {weeks} weeks, not delivered; no children", (booking,))
    woman, _, kids = _planted_family(p, mother_age=(26, 34), kids=((6, 1), (2, 9)))
    booking = p.event(woman, BOOKING, ago(months=1, weeks=2), value="11", clinician="PN01")
    planted = p.event(woman, UNBORN_CP, ago(months=1))
    to_kids = "; listed on her two children (mother link and household)"
    p.plant(woman, "unborn_concern", True, "unborn baby on a CP plan 1 month ago" + to_kids, (planted,), tuple(kids))
    p.plant(woman, "antenatal_booking", True, "booked at 11 weeks, not delivered" + to_kids, (booking,), tuple(kids))

    for code, months, value, late_code in (
        (BOOKING, 1, "9", None),
        (BOOKING, 3, "12", None),
        (BOOKING_EARLY, 5, "", None),
        (BOOKING, 2, "22", None),
        (BOOKING, 4, "", LATE_BOOKER),
        (BOOKING_17_30, 3, "19", None),
        (BOOKING, 6, "13", None),
    ):
        children: tuple[_Person, ...] = ()
        where = "; no children"
        if months == 3 and code is BOOKING:
            woman, _, kids = _planted_family(p, mother_age=(25, 38), kids=((3, 2),))
            children, where = tuple(kids), "; listed on her child"
        elif months == 2:  # she lives with her partner and his child from an earlier relationship
            hh = p.new_household()
            woman = p.adult("F", hh, age=(24, 38))
            partner = p.adult("M", hh, age=(28, 44))
            stepchild = p.person(rng.choice("FM"), p.born_aged(7, 3, rng.randint(0, 20)), hh, partner.family)
            p.add_household([woman, partner, stepchild])
            p.relate(stepchild, partner, "father")
            children, where = (stepchild,), "; listed on her partner's child in her household (no link to her)"
        else:
            hh = p.new_household()
            woman = p.adult("F", hh, age=(18, 42))
            members = [woman]
            if rng.random() < 0.6:
                members.append(p.adult("M", hh, woman.family if rng.random() < 0.5 else None, age=(20, 46)))
            p.add_household(members)
        booked = ago(months=months)
        planted = [p.event(woman, code, booked, value=value, clinician="PN02")]
        if late_code:
            planted.append(p.event(woman, late_code, booked + 1, clinician="PN02"))
        late = bool(late_code) or code is BOOKING_17_30 or (value and int(value) >= 13)
        why = f"booked {months} month{'s' if months > 1 else ''} ago" + (f" at {value} weeks" if value else "")
        p.plant(woman, "antenatal_booking", True, why + ", not delivered" + where, tuple(planted), children)
        if late:
            reason = (
                "late-booker code"
                if late_code
                else "booking code for 17-30 weeks"
                if code is BOOKING_17_30
                else (f"gestation {value} weeks (late from 13)")
            )
            p.plant(woman, "late_booking", True, f"late booking: {reason}" + where, tuple(planted), children)

    # --- new births (window 8 weeks): the mothers' bookings are ended by a delivery code
    for weeks in (1, 3, 7):
        mother, _, kids = _planted_family(p, mother_age=(22, 39), kids=((3, 6),) if weeks == 3 else ())
        baby = p.person(rng.choice("FM"), ago(weeks=weeks), mother.household, mother.family)
        _household_of(p, mother).append(baby)
        p.relate(baby, mother, "mother")
        for sib in kids:
            p.relate(baby, sib, "sibling")
            p.relate(sib, baby, "sibling")
        baby.reg_from = ago(weeks=weeks) + 3
        p.event(baby, SINGLE_LIVE_BIRTH, baby.dob, clinician="HV01")
        p.event(mother, BOOKING, ago(months=8), value="10", clinician="PN01")
        delivery = p.event(mother, SINGLE_LIVE_BIRTH if weeks != 3 else CAESAREAN, baby.dob)
        flagged = weeks != 3
        if flagged:
            p.concerns.append((baby, baby.dob + 4, "HV01", None, "Health visitor concern after birth visit"))
        born = f"born {weeks} week{'s' if weeks > 1 else ''} ago"
        why = "; open concern flag" if flagged else "; no concern flag in the family: held back"
        p.plant(baby, "new_birth", flagged, born + why, ())
        p.plant(
            mother,
            "booking_delivered",
            False,
            "booked 8 months ago, delivered (end code after booking)",
            (BOOKING[0], delivery),
        )


def _household_of(p: _Practice, person: _Person) -> list[_Person]:
    for members in reversed(p.households):
        if any(m is person for m in members):
            return members
    raise LookupError("person has no household")


def _plant_near_misses(p: _Practice) -> None:
    rng = p.rng
    ago = p.ago

    def lone_child(years: int, months: int = 0, father: str | None = "resident") -> _Person:
        _, _, (child,) = _planted_family(p, father=father, kids=((years, months),))
        return child

    child = lone_child(9, 4)
    codes = (p.event(child, CP_PLAN, ago(years=2)), p.event(child, CP_ENDED, ago(years=1)))
    p.plant(child, "cp_plan_ended", False, "CP plan 2 years ago, ended by a later end code 1 year ago", codes)

    child = lone_child(6, 10, father="step")
    codes = (p.event(child, CIN, ago(months=18)), p.event(child, CIN_ENDED, ago(months=6)))
    p.plant(
        child,
        "child_in_need_ended",
        False,
        "child in need 18 months ago, no longer in need 6 months ago",
        codes,
    )

    child = lone_child(12, 2)
    codes = (p.event(child, LAC, ago(years=4)), p.event(child, LAC_ENDED, ago(years=2)))
    p.plant(child, "looked_after_ended", False, "looked after 4 years ago, arrangement ended 2 years ago", codes)

    child = lone_child(8, 0, father=None)
    codes = (p.event(child, CFC, ago(months=25)),)
    p.plant(
        child,
        "cause_for_concern_old",
        False,
        "cause for concern 25 months ago (window 2 years), no end code",
        codes,
    )

    child = lone_child(5, 5)
    codes = (p.event(child, CFC_SAFEGUARDING, ago(months=10)), p.event(child, CFC_ENDED, ago(months=4)))
    p.plant(child, "cause_for_concern_ended", False, "cause for concern 10 months ago, ended 4 months ago", codes)

    child = lone_child(16, 1, father=None)
    codes = (p.event(child, CSE_VICTIM, ago(years=2, days=10)),)
    p.plant(child, "exploitation_old", False, "exploitation code 2 years and 10 days ago (window 2 years)", codes)

    # a baby born 9 weeks ago (window 8 weeks); the mother booked then delivered
    mother, _, _ = _planted_family(p, mother_age=(23, 36), kids=())
    baby = p.person(rng.choice("FM"), ago(weeks=9), mother.household, mother.family)
    _household_of(p, mother).append(baby)
    baby.reg_from = baby.dob + 5
    p.relate(baby, mother, "mother")
    p.event(baby, SINGLE_LIVE_BIRTH, baby.dob, clinician="HV02")
    p.plant(baby, "new_birth_9_weeks", False, "born 9 weeks ago (new-birth window 8 weeks)")
    codes = (
        p.event(mother, BOOKING, ago(months=7), value="11"),
        p.event(mother, SINGLE_LIVE_BIRTH, baby.dob),
    )
    p.plant(mother, "booking_delivered", False, "booked 7 months ago, delivered 9 weeks ago", codes)

    hh = p.new_household()
    woman = p.adult("F", hh, age=(21, 38))
    p.add_household([woman])
    codes = (p.event(woman, BOOKING, ago(months=10), value="10"),)
    p.plant(woman, "booking_old", False, "booking 10 months ago (window 9 months), no delivery recorded", codes)

    # an unborn-baby concern from a previous pregnancy: the baby is now 5 months old
    mother, _, _ = _planted_family(p, mother_age=(20, 34), kids=())
    baby = p.person(rng.choice("FM"), ago(months=5), mother.household, mother.family)
    _household_of(p, mother).append(baby)
    baby.reg_from = baby.dob + 4
    p.relate(baby, mother, "mother")
    codes = (
        p.event(mother, BOOKING, ago(months=12), value="12"),
        p.event(mother, UNBORN_CFC, ago(months=14)),
        p.event(mother, CAESAREAN, baby.dob),
    )
    p.plant(
        mother,
        "unborn_concern_old",
        False,
        "unborn concern coded 14 months ago (window 10 months), delivered",
        codes,
    )

    child = lone_child(7, 7)
    for member in _household_of(p, child):
        member.reg_to = ago(months=3)
    codes = (p.event(child, CP_PLAN, ago(months=8)),)
    p.plant(
        child,
        "cp_plan_deregistered",
        False,
        "active CP plan but the family left the practice 3 months ago",
        codes,
    )

    child = lone_child(3, 3)
    child.dod = ago(years=1)
    child.reg_to = child.dod
    codes = (p.event(child, CP_PLAN, ago(months=20)),)
    p.plant(child, "cp_plan_died", False, "on a CP plan, died 1 year ago (protocol keeps 3 months)", codes)

    child = lone_child(18, 2, father=None)
    codes = (p.event(child, CP_PLAN, ago(years=2)),)
    p.plant(child, "cp_plan_age_18", False, "active CP code but aged 18 (population 0-17)", codes)


def _plant_risk_factors(p: _Practice) -> None:
    """Parental risk factors (with and without professional concern), missed appointments, and the family
    situations of issue 3: ended step-parent link, separated parents, a father who left the household, a
    father not registered here, a child under 5 with no linked adult, a risk code with no child-side code.

    Parental risk criteria and new births count only when someone in the child's family has an open concern
    flag or a recent cause-for-concern code; without one the child is held back (counted in the summary).
    """
    rng = p.rng
    ago = p.ago
    held_back = "; no concern flag in the family: held back"

    def flag(person: _Person, months: int, resolved_months: int | None = None, by: str = "GP02") -> None:
        resolved = ago(months=resolved_months) if resolved_months is not None else None
        p.concerns.append((person, ago(months=months), by, resolved, "Discussed with health visitor; see record"))

    def other_surname(person: _Person, than: _Person) -> None:
        while person.family == than.family:
            person.family = rng.choice(_FAMILY_NAMES)

    def missed(child: _Person, months: tuple[int, ...], statuses: tuple[str, ...] = ("was_not_brought",)) -> None:
        child.quiet = True
        for i, month in enumerate(months):
            status = statuses[i % len(statuses)]
            p.appointments.append(
                (child, ago(months=month, days=rng.randint(0, 20)), status, rng.choice(CLINICIANS_NURSE))
            )

    # domestic abuse: mother victim (resident family); the children's records carry the household code
    mother, _, kids = _planted_family(p, kids=((4, 1), (7, 8)))
    codes = (
        p.event(mother, DA_VICTIM, ago(months=4)),
        p.event(mother, DA_POLICE_REPORT, ago(months=4, days=-2)),
    )
    for kid in kids:
        p.event(kid, DA_IN_HOUSEHOLD, ago(months=4, days=-5), clinician="HV02")
    for kid, whose in zip(kids, ("open concern flag on the child", "open concern flag on a sibling"), strict=True):
        p.plant(
            kid,
            "parental_domestic_abuse",
            True,
            f"domestic abuse on the mother's record (police report) and the child-side code; {whose}",
            codes + (DA_IN_HOUSEHOLD[0],),
        )
    flag(kids[0], 3)

    # separated parents: the child lives with the mother; the father (another surname) lives in another
    # household with a new partner. His record reaches through the explicit link; hers does not.
    mother, dad, (child,) = _planted_family(p, father="elsewhere", kids=((10, 5),))
    other_surname(dad, child)
    partner = p.adult("F", dad.household, age=(24, 45))
    _household_of(p, dad).append(partner)
    codes = (p.event(dad, DV_HISTORY, ago(months=8)),)
    p.plant(
        child,
        "parental_domestic_abuse",
        True,
        "separated parents: domestic violence on the father's record (another household and surname); "
        "no child-side code (data gap); open concern flag on the mother",
        codes,
    )
    codes = (p.event(partner, DRUG_ABUSE, ago(months=5)),)
    p.plant(
        child,
        "parental_drug_misuse",
        False,
        "drug misuse on the father's new partner's record: she is in his household, not the child's, so it "
        "does not reach",
        codes,
    )
    flag(mother, 3, by="HV01")

    # drug misuse: both parents (the father's code is older than the 2-year window); concern flags open
    mother, dad, kids = _planted_family(p, kids=((1, 4), (5, 0)))
    codes = (p.event(mother, DRUG_ABUSE, ago(months=10)), p.event(dad, OPIOID_DEPENDENCE, ago(years=3)))
    p.event(kids[1], DRUG_MISUSER_IN_HOUSEHOLD, ago(months=9), clinician="HV01")
    p.plant(
        kids[0],
        "parental_drug_misuse",
        True,
        "drug misuse on the mother's record; no child-side code (data gap); open concern flag",
        codes,
    )
    p.plant(
        kids[1],
        "parental_drug_misuse",
        True,
        "drug misuse on the mother's record and the child-side code; open concern flag",
        codes + (DRUG_MISUSER_IN_HOUSEHOLD[0],),
    )
    flag(kids[0], 6)
    flag(kids[1], 6)

    # alcohol misuse: a resident step-father with another surname; no concern flag
    mother, step, kids = _planted_family(p, father="step", kids=((9, 9), (13, 2)))
    codes = (p.event(step, ALCOHOL_DEPENDENCE, ago(years=1)), p.event(step, ALCOHOL_ABUSE, ago(months=2)))
    p.event(kids[0], ALCOHOL_MISUSER_IN_HOUSEHOLD, ago(months=2), clinician="GP03")
    for kid in kids:
        p.plant(
            kid,
            "parental_alcohol_misuse",
            False,
            "alcohol misuse on the step-parent's record" + held_back,
            codes + (ALCOHOL_MISUSER_IN_HOUSEHOLD[0],),
        )

    # an ended step-parent link: he moved out a year ago; the child is cause for concern now
    mother, _, (child,) = _planted_family(p, father=None, kids=((7, 2),))
    former = p.adult("M", p.new_household(), age=(28, 50))
    other_surname(former, child)
    p.add_household([former])
    p.relate(child, former, "step-parent", start=ago(years=5), end=ago(years=1))
    codes = (p.event(former, ALCOHOL_DEPENDENCE, ago(months=6)),)
    p.plant(
        child,
        "parental_alcohol_misuse",
        False,
        "alcohol dependence on a former step-parent's record: the link ended 1 year ago and he lives "
        "elsewhere, so it no longer reaches the child",
        codes,
    )
    cfc = p.event(child, CFC_SAFEGUARDING, ago(months=5))
    p.plant(child, "cause_for_concern", True, "cause for safeguarding concern 5 months ago; former step-parent", (cfc,))

    # a father who left the household (another household now): the explicit father link still reaches;
    # the mother's former partner, never linked, left too and no longer counts as a household adult
    mother, _, (child,) = _planted_family(p, father=None, kids=((9, 6),))
    dad = p.adult("M", p.new_household(), child.family, age=(30, 50))
    p.add_household([dad])
    p.relate(child, dad, "father")
    codes = (p.event(dad, SUICIDE_ATTEMPT, ago(months=3)),)
    p.plant(
        child,
        "parental_suicide_self_harm",
        True,
        "father left the household (another household now): the recorded father link still reaches; open concern flag",
        codes,
    )
    former = p.adult("M", p.new_household(), age=(30, 50))
    other_surname(former, child)
    p.add_household([former])
    codes = (p.event(former, ALCOHOL_ABUSE, ago(months=4)),)
    p.plant(
        child,
        "parental_alcohol_misuse",
        False,
        "alcohol misuse on the mother's former partner's record: no recorded link, and he left the "
        "household, so he is no longer a household adult",
        codes,
    )
    flag(child, 2)

    # a father not registered at this practice: a relationship row with no patients row. Nothing of his
    # can be read; the child's own child-side code counts.
    mother, _, (child,) = _planted_family(p, father=None, kids=((3, 8),))
    absent = p.person("M", p.today - rng.randint(25 * 365, 40 * 365), "", child.family)
    p.unregistered.append(absent)
    p.relate(child, absent, "father")
    code = p.event(child, DA_IN_HOUSEHOLD, ago(months=5), clinician="HV02")
    p.plant(
        child,
        "parental_domestic_abuse",
        True,
        "father not registered at this practice (no patients row): the child-side code on the child's own "
        "record counts; open concern flag on the mother",
        (code,),
    )
    flag(mother, 4, by="HV02")

    # a child under 5 with no linked adult: no relationship recorded, no adult registered in the household
    child = p.person(rng.choice("FM"), p.born_aged(2, 4, rng.randint(0, 20)), p.new_household())
    p.add_household([child])
    code = p.event(child, CFC, ago(months=2), clinician="HV01")
    p.plant(
        child,
        "cause_for_concern",
        True,
        "cause for concern 2 months ago; aged 2 with no linked adult (data gap)",
        (code,),
    )

    # mental illness: postnatal depression with a 4-month-old, no flag; schizophrenia with a resolved flag;
    # severe mental illness with an open flag but no other minor criterion (below the threshold of two)
    mother, _, _ = _planted_family(p, kids=((2, 6),))
    baby = p.person(rng.choice("FM"), ago(months=4), mother.household, mother.family)
    _household_of(p, mother).append(baby)
    baby.reg_from = baby.dob + 6
    p.relate(baby, mother, "mother")
    codes = (p.event(mother, POSTNATAL_DEPRESSION, ago(months=2)),)
    older = [r[0] for r in p.relationships if r[1] is mother and r[0] is not baby]
    for sib in older:
        p.relate(baby, sib, "sibling")
        p.relate(sib, baby, "sibling")
    for kid in (baby, *older):
        p.plant(kid, "parental_mental_illness", False, "postnatal depression on the mother's record" + held_back, codes)
    mother, _, (child,) = _planted_family(p, father=None, kids=((6, 6),))
    codes = (p.event(mother, SCHIZOPHRENIA, ago(years=4)), p.event(mother, SMI_REGISTER, ago(years=3)))
    p.plant(
        child,
        "parental_mental_illness",
        False,
        "severe mental illness on the mother's record; the concern flag was resolved 8 months ago: held back",
        codes,
    )
    flag(child, 14, resolved_months=8, by="HV01")
    mother, _, (child, younger) = _planted_family(p, father="resident", kids=((11, 0), (4, 3)))
    codes = (p.event(mother, SMI_REGISTER, ago(years=2)),)
    p.plant(
        child,
        "parental_mental_illness",
        False,
        "severe mental illness on the mother's record, open concern flag, but one minor criterion only "
        "(the protocol lists a child with two)",
        codes,
    )
    p.plant(
        younger,
        "parental_mental_illness",
        True,
        "severe mental illness on the mother's record; concern flag on a sibling; with missed appointments, "
        "two minor criteria",
        codes,
    )
    missed(younger, (1, 7), ("did_not_attend", "was_not_brought"))
    p.plant(
        younger,
        "was_not_brought",
        True,
        "2 missed appointments in 12 months (one did-not-attend, one was-not-brought); with parental mental "
        "illness, two minor criteria",
    )
    flag(child, 5)

    # suicide attempt / self-harm, father in another household; no concern flag
    mother, _, kids = _planted_family(p, father="elsewhere", kids=((8, 0), (11, 11)))
    codes = (
        p.event(mother, SUICIDE_ATTEMPT, ago(months=6)),
        p.event(mother, SELF_HARM_HISTORY, ago(months=5)),
    )
    for kid in kids:
        p.plant(kid, "parental_suicide_self_harm", False, "suicide attempt on the mother's record" + held_back, codes)

    # learning disability and a baby not brought twice: two minor criteria, concern flag open
    mother, _, (child,) = _planted_family(p, father="resident", kids=((0, 8),))
    codes = (
        p.event(mother, INTELLECTUAL_DISABILITY, ago(years=12)),
        p.event(mother, LD_REGISTER, ago(years=11)),
    )
    p.plant(
        child,
        "parental_learning_disability",
        True,
        "learning disability on the mother's record; open concern flag; with missed appointments, two minor criteria",
        codes,
    )
    missed(child, (2, 5), ("was_not_brought", "did_not_attend"))
    p.plant(
        child,
        "was_not_brought",
        True,
        "2 missed appointments in 12 months (one was-not-brought, one did-not-attend); with parental learning "
        "disability, two minor criteria",
    )
    flag(child, 4, by="HV01")

    # children not brought with nothing else: one minor criterion is below the threshold
    for count, (years, months) in ((3, (2, 2)), (4, (0, 11))):
        _, _, (child,) = _planted_family(p, father=rng.choice((None, "step")), kids=((years, months),))
        missed(child, tuple(2 + 3 * i for i in range(count)))
        code = p.event(child, CHILD_NOT_BROUGHT, ago(months=2), clinician="GP01")
        p.plant(
            child,
            "was_not_brought",
            False,
            f"{count} was-not-brought appointments in 12 months, nothing else: one minor criterion (two needed)",
            (code,),
        )
        if count == 4:
            flag(child, 1)
    # a missed appointment and its code on the same day count once
    _, _, (child,) = _planted_family(p, father=None, kids=((6, 4),))
    child.quiet = True
    day = ago(months=4)
    p.appointments.append((child, day, "was_not_brought", "PN03"))
    code = p.event(child, CHILD_NOT_BROUGHT, day, clinician="PN03")
    p.plant(
        child,
        "was_not_brought",
        False,
        "a was-not-brought appointment and its code on the same day: one missed day (two needed)",
        (code,),
    )

    # accumulation across a family: mother drinks, her new partner (another surname) misuses drugs,
    # the child is also cause for concern and has missed appointments
    mother, step, (child,) = _planted_family(p, father="step", kids=((5, 3),))
    codes = (p.event(mother, ALCOHOL_ABUSE, ago(months=9)),)
    p.plant(child, "parental_alcohol_misuse", True, "alcohol misuse on the mother's record; concern", codes)
    codes = (p.event(step, DRUG_ABUSE, ago(months=7)),)
    p.plant(
        child, "parental_drug_misuse", True, "drug misuse on the step-parent's (another surname) record; concern", codes
    )
    cfc = p.event(child, CFC_SAFEGUARDING, ago(months=1))
    p.plant(
        child,
        "cause_for_concern",
        True,
        "cause for safeguarding concern 1 month ago; parental risk factors",
        (cfc,),
    )
    child.quiet = True
    for months in (3, 8):
        p.appointments.append((child, ago(months=months), "was_not_brought", "PN02"))
    code = p.event(child, CHILD_NOT_BROUGHT, ago(months=3), clinician="PN02")
    p.plant(child, "was_not_brought", True, "2 was-not-brought appointments in 12 months; with other criteria", (code,))
    flag(child, 2)


# --------------------------------------------------------------------------------------------- assembly


def _nhs_number(rng: random.Random, used: set[str]) -> str:
    while True:
        stem = "999" + f"{rng.randrange(1_000_000):06d}"
        total = sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check == 10:
            continue
        number = stem + str(check)
        if number not in used:
            used.add(number)
            return number


def _build(patients: int, seed: int, as_of: date) -> _Practice:
    if patients < MIN_PATIENTS:
        raise OptionError(f"patients: at least {MIN_PATIENTS} are needed to hold the planted cases, got {patients}")
    p = _Practice(random.Random(seed), as_of)
    _plant_protocol_cases(p)
    _plant_near_misses(p)
    _plant_risk_factors(p)
    planted_people = set()
    for members in p.households:  # planted children miss no appointments beyond those planted
        for person in members:
            person.quiet = True
            planted_people.add(id(person))
    total = sum(len(h) for h in p.households)
    while total < patients:
        before = len(p.households)
        p.add_household(_background_household(p))
        moved_away = p.rng.random() < 0.05
        for members in p.households[before:]:
            _registration(p, members, moved_away)
            total += len(members)
    while total > patients:  # trim the last household to the exact size asked for
        p.households[-1].pop()
        total -= 1
        if not p.households[-1]:
            p.households.pop()
    rng = p.rng
    for members in p.households:
        _registration(p, members, moved_away=False)
    # background deaths among older adults, registration ends on the death date
    for members in p.households:
        for person in members:
            if person.dod is None and (p.today - person.dob) > 70 * 365 and rng.random() < 0.04:
                earliest = max(person.reg_from + 1, p.today - 5 * 365)
                if earliest >= p.today - 20 or (person.reg_to and person.reg_to <= earliest):
                    continue
                person.dod = rng.randint(earliest, min(p.today - 20, person.reg_to or p.today))
                person.reg_to = person.dod if person.reg_to is None else min(person.reg_to, person.dod)
    # shuffle so planted families do not sit at the start of the id range
    rng.shuffle(p.households)
    used: set[str] = set()
    width = max(5, len(str(patients)))
    number = 0
    for members in p.households:
        no_address = rng.random() < 0.015 and id(members[0]) not in planted_people  # planted: as planted
        for person in members:
            number += 1
            person.pid = f"P{number:0{width}d}"
            if no_address:
                person.household = ""
            r = rng.random()
            if r < 0.02:
                person.nhs = ""
            else:
                person.nhs = _nhs_number(rng, used)
                if r < 0.026:  # a typing error in the check digit
                    person.nhs = person.nhs[:9] + str((int(person.nhs[9]) + 1) % 10)
    for number, person in enumerate(p.unregistered, 1):  # linked relatives with no patients row
        person.pid = f"X{number:0{width}d}"
    for members in p.households:
        for person in members:
            _background_events(p, person)
            _background_appointments(p, person)
    # a few old, resolved concern flags on background children
    for members in p.households:
        for person in members:
            if (p.today - person.dob) < 18 * 365 and person.reg_to is None and rng.random() < 0.01:
                raised = p.today - rng.randint(400, 2500)
                p.concerns.append(
                    (
                        person,
                        raised,
                        rng.choice(CLINICIANS_GP),
                        raised + rng.randint(30, 300),
                        "Resolved after review",
                    )
                )
    _fathers_older_than_their_children(p)
    return p


FATHER_MIN_GAP_YEARS = 16


def _fathers_older_than_their_children(p: _Practice) -> None:
    """A father's age is drawn before his children's, so a few came out fewer than 12 years older than a child,
    and the engine rightly refuses such a birth-parent link with a warning. Each father fewer than
    ``FATHER_MIN_GAP_YEARS`` older than his oldest child here is born that much and a few months earlier (the
    months from his own date of birth, so it stays deterministic). This runs after every random draw, so the
    rest of the practice is unchanged; an earlier birth keeps his registration and events after it."""
    oldest: dict[int, tuple[_Person, int]] = {}
    for child, parent, relationship, *_ in p.relationships:
        if relationship == "father":
            _, first = oldest.get(id(parent), (parent, child.dob))
            oldest[id(parent)] = (parent, min(first, child.dob))
    for father, first_child in oldest.values():
        latest = first_child - round(FATHER_MIN_GAP_YEARS * 365.25)
        if father.dob > latest:
            father.dob = latest - father.dob % 300


def _iso_cache() -> dict[int | None, str]:
    return {None: ""}


def _rows(p: _Practice) -> dict[str, list[tuple[str, ...]]]:
    iso = _iso_cache()

    def d(day: int | None) -> str:
        text = iso.get(day)
        if text is None:
            text = iso[day] = date.fromordinal(day).isoformat()
        return text

    people = sorted((m for members in p.households for m in members), key=lambda m: m.pid)
    placed = {id(m) for m in people}
    related = placed | {id(m) for m in p.unregistered}
    patients = [
        (
            m.pid,
            m.nhs,
            m.family,
            m.given,
            d(m.dob),
            m.sex,
            d(m.dod),
            d(m.reg_from),
            d(m.reg_to),
            m.household,
            PRACTICE,
        )
        for m in people
    ]
    events = sorted(
        ((e[0].pid, e[1], d(e[2]), e[3], "" if e[4] == "snomed" else e[4], e[5], e[6]) for e in p.events),
        key=lambda row: (row[0], row[2], row[1], row[4], row[5], row[6]),
    )
    relationships = sorted(
        (r[0].pid, r[1].pid, r[2], d(r[3]), d(r[4]))
        for r in p.relationships
        if id(r[0]) in placed and id(r[1]) in related
    )
    appointments = sorted((a[0].pid, d(a[1]), a[2], a[3]) for a in p.appointments)
    concerns = sorted((c[0].pid, d(c[1]), c[2], d(c[3]), c[4]) for c in p.concerns)
    return {
        "patients": patients,
        "events": events,
        "relationships": relationships,
        "appointments": appointments,
        "concerns": concerns,
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(path, text.getvalue())


def _write_parquet(path: Path, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {name: [row[i] or None for row in rows] for i, name in enumerate(columns)}
    table = pa.table({name: pa.array(values, type=pa.string()) for name, values in data.items()})
    atomic_write(path, lambda handle: pq.write_table(table, handle, compression="zstd"))


def generate_practice(
    out_dir: Path,
    patients: int = 5000,
    seed: int = 1,
    as_of: date = AS_OF,
    fmt: str = "csv",
    overwrite: bool = False,
) -> SampleSummary:
    """Write a synthetic practice extract (one file per table) into ``out_dir`` and describe it.

    Deterministic: the same ``patients``, ``seed`` and ``as_of`` give byte-identical files. A folder that
    already holds an extract file (of either format) is refused unless ``overwrite``, as it may be a real
    practice's extract; with ``overwrite`` the other format's files go too, so the folder holds one extract.
    """
    if fmt not in FORMATS:
        raise OptionError(f"format: expected one of {', '.join(FORMATS)}, got '{fmt}'")
    out_dir = Path(out_dir)
    existing = sorted(path for name in TABLES for f in FORMATS if (path := out_dir / f"{name}.{f}").exists())
    if not overwrite:
        refuse_existing(
            existing,
            "already exists",
            "Nothing was written. Choose an empty folder, or add --overwrite to replace these files.",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    practice = _build(patients, seed, as_of)
    tables = _rows(practice)
    files = []
    for name, table in TABLES.items():
        path = out_dir / f"{name}.{fmt}"
        (_write_csv if fmt == "csv" else _write_parquet)(path, table.column_names, tables[name])
        files.append(path)
    for path in set(existing) - set(files):
        path.unlink()  # the other format's: two files for one table would make the extract ambiguous
    planted = tuple(
        sorted(
            (
                PlantedCase(
                    c.person.pid,
                    c.criterion_id,
                    c.expect_listed,
                    c.note,
                    c.codes,
                    tuple(sorted(child.pid for child in c.routed_to)),
                )
                for c in practice.cases
            ),
            key=lambda c: (c.criterion_id, c.patient_id),
        )
    )
    return SampleSummary(
        patients=len(tables["patients"]),
        events=len(tables["events"]),
        relationships=len(tables["relationships"]),
        appointments=len(tables["appointments"]),
        concerns=len(tables["concerns"]),
        files=tuple(files),
        planted=planted,
    )


def planted_markdown(summary: SampleSummary) -> str:
    """The planted cases as a Markdown table (for sample_data/README.md; the tests keep it in step)."""
    lines = ["| patient_id | criterion | listed | note |", "|---|---|---|---|"]
    for case in summary.planted:
        listed = "yes" if case.expect_listed else "no"
        if case.expect_listed and case.routed_to:
            listed = "on " + ", ".join(case.routed_to)
        lines.append(f"| {case.patient_id} | {case.criterion_id} | {listed} | {case.note} |")
    return "\n".join(lines) + "\n"
