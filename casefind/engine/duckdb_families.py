"""Family linking in DuckDB: who is a child's parent, household adult or sibling on the as-of date, which
family each patient belongs to, and who has professional concern.

How explicit links and shared households combine (the README's Families section says the same):

* A ``relationships`` row counts only while valid on the as-of date (start_date <= as-of <= end_date, an
  empty date meaning open). ``patient_id`` is the child and ``related_patient_id`` is the child's
  ``relationship``: one of ``PARENT_WORDS`` (mother, dad, foster carer, legal guardian, mother's partner ...),
  ``SIBLING_WORDS`` or ``HOUSEHOLD_WORDS``. Rows written the other way round (``CHILD_WORDS``: son,
  foster child, stepdaughter ...) are read as the reverse link. Words are compared after
  ``normalised_word_sql``; any other word is reported by count, never used.
* A word counts as a parent only where the adult has parental responsibility for the child or cares for
  them: birth, adoptive, foster and step-parents, guardians, carers (kinship and grandparent carers too)
  and a parent's partner. A plain grandparent, aunt or uncle does not; record them as carers if they are.
* **parent**: an explicit parent-type link, wherever the parent lives and whether or not they are
  registered here (a parent with no record here simply has no codes to read). A parent who died on or
  before the as-of date is still linked (their record may explain a bereaved child's risk), and the
  relation says so: "father (died 2026-03-01)". A row that cannot be right as written makes no link: one
  naming as a birth parent (``BIRTH_PARENT_WORDS``, or a birth child word reversed) someone with a record
  here fewer than ``MIN_MOTHER_GAP_YEARS`` (12) years older than the child, or as any other parent
  (step, foster, adoptive, carer, guardian, partner: a mother's partner may be 10 years older than her
  child) someone not older than the child. Most often the export wrote the rows the other way round.
* **A household** is a ``household_id`` at one practice (``practice_id``; a blank one is a practice of its
  own): household ids are the practice system's, so the same id at two practices is two households. Its
  members are the patients registered and alive on the as-of date with it, and the children (under 18)
  who died on or before the as-of date but within the population's ``include_deaths_within`` (the
  ``death_from`` of ``build_links``): such a child can still be listed, so keeps their household adults
  and siblings. A registration that ended on or after the date of death was ended by it (as
  ``duckdb_engine._people_sql`` reads it).
* **household_adult**: a patient aged 18 or over on the as-of date who shares the child's household and is
  registered and alive on the as-of date (an adult who died is not), or an explicit ``household member``
  link to such an adult (with or without a ``household_id``). An adult who has left the household (a
  different household_id now) no longer counts; an explicit parent link still does.
* **sibling**: an explicit sibling link (either direction), another child of a linked parent (so
  half-siblings with different surnames are found: "sibling (shared father)"; "sibling (shared father,
  their foster carer)" where one child's birth parent is the other's foster carer, step-parent or carer),
  or another child (under 18) in the same household, unless one of the two is the other's parent by an
  explicit link (a mother of 16 living with her baby is the baby's mother, not also a sibling).
  A criterion reads a sibling's record only while the sibling is a child (under 18, whatever the population's
  ages) registered here (``duckdb_engine._route``).
* **A pregnancy reaches** (``annotated_links_sql``) the children an expectant woman is a parent of,
  and the children of her household unless she is the child's sibling (an explicit sibling link or a shared
  parent: a pregnant 19-year-old living with her parents is not her younger brother's mother) or fewer
  than ``MIN_MOTHER_GAP_YEARS`` (12) years older than the child (with only a household_id to go on, a
  sister cannot be told from a mother otherwise; a mother under 12 is unheard of). A woman it reaches no
  child of is the case for her unborn baby herself.
* A **family** is the connected set of patients joined by any of these links (a parent with no record
  here still joins the children linked to them); its ``family_id`` is ``F`` + the first 8 hex digits of
  the MD5 of the smallest member's id, so it is stable while the family's membership is.

Placeholders and institutions are not families. An export may write an unknown value as a placeholder
(``0``, ``NULL``, ``UNKNOWN``), and a care home, hostel or children's home gives unrelated people one
``household_id``. Linking through either would make unrelated children siblings, make one adult the
household adult or "parent" of them all, and list them for each other's plans and risks.

* **A placeholder id** (``unknown_id_sql``: ``UNKNOWN_IDS`` such as NULL, N/A, NOT KNOWN, ``-`` or ``?``
  in any case and with spaces around it, or an all-zero or blank id) links no one, however few share it:
  a placeholder ``household_id`` is read as blank, and a relationships row whose ``related_patient_id``
  is one makes no link. Each is a column of a table the links are built from anyway.

Two size guards, each one aggregate over a table the links are built from anyway (``residents``, the
parent rows of ``rel``), never another pass over patients or relationships; a placeholder they catch is
reported by them, not counted again:

* **A household (household_id at one practice) of more than** ``MAX_HOUSEHOLD`` **(20) members** is not
  a family household: it makes no shared-household links (household adult, child in
  household). The Census's largest household-size band is "8 or more people"; more than 20 on one
  household_id is a placeholder or an institution, not a family. Explicit relationships rows still link
  its residents (a parent, a ``household member``, a sibling).
* **An id named as the parent of more than** ``MAX_CHILDREN_OF_ONE_PARENT`` **(12) children** in rows
  valid on the as-of date is a placeholder, not a parent: those rows make no parent link and no
  shared-parent sibling links. A foster carer's usual limit is three children (Children Act 1989,
  Schedule 7) and families of more than twelve are vanishingly rare; a real one would lose its parent
  links, and the warning tells the user to check.

Each guard or check that fires (a size guard, placeholder household_ids, placeholder related_patient_ids,
implausible parent rows) gives one warning, with counts only: never an id or any other value.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from casefind.errors import Problem
from casefind.extract import normalised_word_sql, sql_words, unknown_id_sql
from casefind.schema import (  # the relationship words, declared once: the reader tells the child's side by them
    BIRTH_CHILD_WORDS,
    BIRTH_PARENT_WORDS,
    CHILD_WORDS,
    HOUSEHOLD_WORDS,
    PARENT_WORDS,
    SIBLING_WORDS,
)

LINKING_WORDS = PARENT_WORDS + CHILD_WORDS + SIBLING_WORDS + HOUSEHOLD_WORDS  # every word casefind links by

# An unrecognised value is echoed in the warning only if, normalised, it is letters and spaces (30 at most)
# and every word of it is a word of kinship or care (or qualifies one): anything else could be a name or an
# identifier in the wrong column, or a name typed beside the relationship ("Aunt Ruby", "uncle bob").
SHOWN_WORD = r"\p{L}[\p{L} ]{0,29}"
KIN_WORDS = frozenset(
    """
    mother father parent parents mum mam mom mummy dad daddy carer carers guardian partner husband wife spouse
    boyfriend girlfriend fiance fiancee child children son daughter sibling brother sister twin aunt auntie
    aunty uncle niece nephew cousin gran granny nan nana nanna nanny grandma grandpa grandad granddad grandmother
    grandfather grandparent grandchild grandson granddaughter grandparents relative family friend neighbour
    lodger household member resident minder childminder worker social support key next kin
    step stepmother stepfather stepmum stepdad stepparent stepchild stepson stepdaughter stepbrother stepsister
    godmother godfather godparent god half great grand in law foster adoptive adopted birth natural biological
    kinship special legal main primary maternal paternal ex former other non of the and to with lives mothers
    fathers mums dads
    """.split()
)
MAX_WORDS_SHOWN = 5

# Above these a household_id or a parent's id is a placeholder or an institution, not a family (module docstring).
MAX_HOUSEHOLD = 20  # patients registered and alive on the as-of date
MAX_CHILDREN_OF_ONE_PARENT = 12  # children named in rows valid on the as-of date
# A woman fewer years older than a child of her household is not taken for the child's mother, and a birth parent
# named in relationships who is fewer years older than the child is not linked (module docstring).
MIN_MOTHER_GAP_YEARS = 12
# A household adult is this old or older; a child (a household's child, a sibling whose record is read:
# duckdb_engine._route) is younger.
ADULT_AGE = 18


def age_sql(as_of: str) -> str:
    """SQL for age in whole years on the date ``as_of`` (an SQL expression: a parameter or a literal), over
    the patients table: one year less while the birthday (month * 100 + day) is still to come. Plain
    arithmetic, no text, for millions of rows."""
    return (
        f"year({as_of}) - year(date_of_birth) "
        f"- CASE WHEN month(date_of_birth) * 100 + day(date_of_birth) > month({as_of}) * 100 + day({as_of}) "
        "THEN 1 ELSE 0 END"
    )


def run_script(con: duckdb.DuckDBPyConnection, script: str, params: dict | None = None) -> None:
    """Run ``;``-separated statements, giving each the named parameters it uses (DuckDB binds only one)."""
    for statement in (s.strip() for s in script.split(";\n")):
        if statement:
            used = {k: v for k, v in (params or {}).items() if f"${k}" in statement}
            con.execute(statement, used or None)


def build_links(con: duckdb.DuckDBPyConnection, as_of: date, death_from: date | None = None) -> list[str]:
    """Create ``links(child_id, relative_id, relation, role)`` and ``family_of_linked(patient_id, family_id)``.

    ``death_from``: the start of the population's ``include_deaths_within`` window (None: no such window); a
    child who died on or after it, and on or before ``as_of``, is still a member of their household.

    Returns the warnings: the relationship words that were not recognised, with their row counts, and each
    placeholder guard or check that fired (``_placeholder_warnings``).
    """
    run_script(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE rel AS
        SELECT patient_id, related_patient_id,
               {normalised_word_sql("relationship")} AS word,
               {unknown_id_sql("related_patient_id")} AS unknown_related,
               {unknown_id_sql("patient_id")} AS unknown_patient
        FROM relationships
        WHERE (start_date IS NULL OR start_date <= $as_of) AND (end_date IS NULL OR end_date >= $as_of)
          AND patient_id <> related_patient_id;

        -- a household_id is the practice's: the same one at two practices is two households (a blank
        -- practice_id is a practice of its own). A child who died recently is still in the household; a
        -- registration that ended on or after the death was ended by it.
        CREATE OR REPLACE TEMP TABLE residents AS
        SELECT patient_id, coalesce(practice_id, '') AS practice_id, household_id,
               {unknown_id_sql("household_id")} AS unknown_household, age
        FROM (SELECT *, {age_sql("$as_of")} AS age FROM patients)
        WHERE date_of_birth <= $as_of
          AND (registered_from IS NULL OR registered_from <= $as_of)
          AND (registered_to IS NULL OR registered_to >= $as_of OR registered_to >= date_of_death)
          AND (date_of_death IS NULL OR date_of_death > $as_of OR age < $adult_age AND date_of_death >= $death_from);
        -- a household_id shared by more residents than a family has is a placeholder or an institution:
        -- its residents keep their explicit links but share no household; nor do those of a placeholder
        -- household_id (NULL, 0, UNKNOWN) of any size, counted apart when the size guard has not caught it
        CREATE OR REPLACE TEMP TABLE large_households AS
        SELECT practice_id, household_id, count(*) AS residents FROM residents WHERE household_id IS NOT NULL
        GROUP BY practice_id, household_id HAVING count(*) > $max_household;
        UPDATE residents SET household_id = NULL, unknown_household = false FROM large_households l
        WHERE residents.practice_id = l.practice_id AND residents.household_id = l.household_id;
        UPDATE residents SET household_id = NULL WHERE unknown_household;
        CREATE OR REPLACE TEMP TABLE adults_here AS
        SELECT patient_id, practice_id, household_id FROM residents WHERE age >= $adult_age;
        CREATE OR REPLACE TEMP TABLE children_here AS
        SELECT patient_id, practice_id, household_id FROM residents WHERE age < $adult_age;

        -- every valid row naming a child's parent, child first (rows from the parent's side reversed), with
        -- whether the parent has a record here, their death, and whether the row is implausible: a birth
        -- parent fewer than MIN_MOTHER_GAP_YEARS older than the child, any other parent not older at all
        CREATE OR REPLACE TEMP TABLE parent_rows AS
        SELECT r.*, p.patient_id IS NOT NULL AS on_record, p.date_of_death AS died,
               coalesce(c.date_of_birth <= p.date_of_birth
                        OR c.date_of_birth < p.date_of_birth + to_years(r.min_gap), false) AS implausible
        FROM (
          SELECT patient_id AS child_id, related_patient_id AS relative_id, word, unknown_related,
                 CASE WHEN word IN ({sql_words(BIRTH_PARENT_WORDS)}) THEN $min_gap ELSE 0 END AS min_gap
          FROM rel WHERE word IN ({sql_words(PARENT_WORDS)})
          UNION ALL
          -- from the parent's side: the parent is patient_id, which may be the placeholder (a row whose
          -- patient_id is not registered here is read when related_patient_id is: casefind.extract)
          SELECT related_patient_id, patient_id, 'parent', unknown_patient OR unknown_related,
                 CASE WHEN word IN ({sql_words(BIRTH_CHILD_WORDS)}) THEN $min_gap ELSE 0 END
          FROM rel WHERE word IN ({sql_words(CHILD_WORDS)})
        ) r
        LEFT JOIN patients p ON p.patient_id = r.relative_id
        LEFT JOIN patients c ON c.patient_id = r.child_id;
        -- an id named as the parent of more children than a family has is a placeholder such as 0 (distinct
        -- children are counted only for the few ids with that many rows: a tenth of the time)
        CREATE OR REPLACE TEMP TABLE placeholder_parents AS
        SELECT relative_id, count(*) AS rows FROM parent_rows
        WHERE relative_id IN (SELECT relative_id FROM parent_rows GROUP BY relative_id HAVING count(*) > $max_children)
        GROUP BY relative_id HAVING count(DISTINCT child_id) > $max_children;

        CREATE OR REPLACE TEMP TABLE parent_links AS
        SELECT DISTINCT child_id, relative_id,
               CASE WHEN word IN ({sql_words(BIRTH_PARENT_WORDS)}) THEN 'parent' ELSE word END AS kind,
               word || CASE WHEN NOT on_record THEN ' (no record here)'
                            WHEN died <= $as_of THEN ' (died ' || strftime(died, '%Y-%m-%d') || ')'
                            ELSE '' END AS relation
        FROM parent_rows
        WHERE relative_id NOT IN (SELECT relative_id FROM placeholder_parents) AND NOT unknown_related
          AND NOT implausible;

        CREATE OR REPLACE TEMP TABLE links AS
        SELECT DISTINCT child_id, relative_id, relation, role,
               -- explicit links first, then shared-parent siblings, household adults, household children
               CASE WHEN relation = 'household adult' THEN 2 WHEN relation = 'child in household' THEN 3
                    WHEN relation LIKE 'sibling (shared %' THEN 1 ELSE 0 END AS priority
        FROM (
          SELECT child_id, relative_id, relation, 'parent' AS role FROM parent_links
          UNION ALL
          SELECT c.patient_id, a.patient_id, 'household adult', 'household_adult'
          FROM children_here c JOIN adults_here a USING (practice_id, household_id)
          UNION ALL
          SELECT r.patient_id, r.related_patient_id, 'household member', 'household_adult'
          FROM rel r JOIN adults_here a ON a.patient_id = r.related_patient_id
          WHERE r.word IN ({sql_words(HOUSEHOLD_WORDS)}) AND NOT r.unknown_related
          UNION ALL
          SELECT patient_id, related_patient_id, 'sibling', 'sibling' FROM rel
          WHERE word IN ({sql_words(SIBLING_WORDS)}) AND NOT unknown_related AND NOT unknown_patient
          UNION ALL
          SELECT related_patient_id, patient_id, 'sibling', 'sibling' FROM rel
          WHERE word IN ({sql_words(SIBLING_WORDS)}) AND NOT unknown_related AND NOT unknown_patient
          UNION ALL
          -- in the child's words, and the other's where they differ: the carers' son sees the child they foster
          -- as 'sibling (shared father, their foster carer)', not as a half-sibling
          SELECT a.child_id, b.child_id,
                 'sibling (shared ' || a.relation || CASE WHEN b.kind = a.kind THEN ''
                                                          ELSE ', their ' || b.relation END || ')', 'sibling'
          FROM parent_links a JOIN parent_links b ON a.relative_id = b.relative_id AND a.child_id <> b.child_id
          UNION ALL
          -- a young parent living with their baby is the baby's parent, not also their sibling
          SELECT a.patient_id, b.patient_id, 'child in household', 'sibling'
          FROM children_here a JOIN children_here b USING (practice_id, household_id)
          ANTI JOIN parent_links p ON p.child_id = a.patient_id AND p.relative_id = b.patient_id
          ANTI JOIN parent_links q ON q.child_id = b.patient_id AND q.relative_id = a.patient_id
          WHERE a.patient_id <> b.patient_id
        );
        """,
        {
            "as_of": as_of,
            "death_from": death_from,
            "max_household": MAX_HOUSEHOLD,
            "max_children": MAX_CHILDREN_OF_ONE_PARENT,
            "min_gap": MIN_MOTHER_GAP_YEARS,
            "adult_age": ADULT_AGE,
        },
    )
    _family_ids(con)
    return _unrecognised_warning(con) + _placeholder_warnings(con)


def _unrecognised_warning(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The rows of ``rel`` whose word is not recognised, counted per word, most frequent first. A value that
    does not look like a relationship word (digits, punctuation, too long, a word that is not one of
    ``KIN_WORDS``: a name in the wrong column, or beside the relationship) is counted but not echoed."""
    known = sql_words(LINKING_WORDS)
    kin = sql_words(tuple(sorted(KIN_WORDS)))
    counts = con.execute(
        f"SELECT CASE WHEN regexp_full_match(word, '{SHOWN_WORD}') "
        f"AND list_bool_and([list_contains([{kin}], w) FOR w IN string_split(word, ' ') IF w <> '']) "
        "THEN word END AS shown, count(*) AS n "
        f"FROM rel WHERE word NOT IN ({known}) GROUP BY shown ORDER BY n DESC, shown"
    ).fetchall()
    if not counts:
        return []
    words = [(word, n) for word, n in counts if word is not None]
    hidden = sum(n for word, n in counts if word is None)
    unused = sum(n for _, n in counts)
    parts = [f"'{word}' ({_rows(n)})" for word, n in words[:MAX_WORDS_SHOWN]]
    if len(words) > MAX_WORDS_SHOWN:
        more = words[MAX_WORDS_SHOWN:]
        parts.append(f"{len(more)} more word{'s' if len(more) != 1 else ''} ({_rows(sum(n for _, n in more))})")
    if hidden:
        parts.append(f"{_rows(hidden)} with a value that does not look like a relationship word (not shown)")
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    many = unused != 1
    return [
        f"relationships: {_rows(unused)} valid on the as-of date {'have' if many else 'has'} a relationship "
        f"casefind does not recognise and {'were' if many else 'was'} not used for linking: {listing}; "
        "the README's Families section lists the words casefind recognises"
    ]


def _placeholder_warnings(con: duckdb.DuckDBPyConnection) -> list[str]:
    """One warning per guard or check that fired (module docstring): how many ids, how many rows or patients.
    Never the ids: a placeholder looks harmless, but a household_id can be an address and a related id a
    patient's. A row or patient a size guard has reported is not counted again as a placeholder."""
    [(parents, rows)] = con.execute("SELECT count(*), coalesce(sum(rows), 0) FROM placeholder_parents").fetchall()
    [(households, residents)] = con.execute(
        "SELECT count(*), coalesce(sum(residents), 0) FROM large_households"
    ).fetchall()
    [(unknown_households,)] = con.execute("SELECT count(*) FROM residents WHERE unknown_household").fetchall()
    [(unknown_related,)] = con.execute(
        f"""SELECT count(*) FROM rel
            WHERE (unknown_related AND word IN ({sql_words(LINKING_WORDS)})
                   OR unknown_patient AND word IN ({sql_words(CHILD_WORDS + SIBLING_WORDS)}))
            AND NOT (word IN ({sql_words(PARENT_WORDS)})
                     AND related_patient_id IN (SELECT relative_id FROM placeholder_parents))
            AND NOT (word IN ({sql_words(CHILD_WORDS)})
                     AND patient_id IN (SELECT relative_id FROM placeholder_parents))"""
    ).fetchall()
    [(implausible,)] = con.execute(
        "SELECT count(*) FROM parent_rows WHERE implausible AND NOT unknown_related "
        "AND relative_id NOT IN (SELECT relative_id FROM placeholder_parents)"
    ).fetchall()
    warnings = []
    if parents:
        one, it = parents == 1, "it" if parents == 1 else "them"
        warnings.append(
            str(
                Problem(
                    "relationships",
                    f"{parents} id{'' if one else 's'} {'is' if one else 'are each'} named as the parent of more "
                    f"than {MAX_CHILDREN_OF_ONE_PARENT} children ({_rows(rows)} valid on the as-of date): most "
                    "likely a placeholder for an unknown parent, such as 0 or UNKNOWN; those rows were not used "
                    f"for linking, so the children are not linked to {it} or, through {it}, to each other",
                    "sort relationships by related_patient_id to find the value given for that many children, and "
                    "have the export leave an unknown parent blank; a real parent of that many children is not "
                    "linked to them, so check those children by hand",
                )
            )
        )
    if households:
        one, it = households == 1, "it" if households == 1 else "them"
        warnings.append(
            str(
                Problem(
                    "patients",
                    f"{households} household_id{' is' if one else 's are each'} shared by more than {MAX_HOUSEHOLD} "
                    f"patients registered on the as-of date ({residents}{'' if one else ' in all'}): a placeholder "
                    "such as NULL or 0, or a care home, hostel or children's home, not a family household; "
                    f"shared-household links (household adult, child in household) were not made for {it}; "
                    "explicit relationships rows still count",
                    "have the export leave an unknown household_id blank, and link children who live in a shared "
                    "home to their carers with relationships rows",
                )
            )
        )
    if unknown_households:
        one = unknown_households == 1
        warnings.append(
            str(
                Problem(
                    "patients",
                    f"{unknown_households} patient{' has' if one else 's have'} a household_id that is a placeholder "
                    "for an unknown household (such as NULL, 0 or UNKNOWN): "
                    f"{'they were' if not one else 'it was'} not linked by household (household adult, child in "
                    "household); explicit relationships rows still count",
                    "have the export leave an unknown household_id blank",
                )
            )
        )
    if unknown_related:
        one = unknown_related == 1
        warnings.append(
            str(
                Problem(
                    "relationships",
                    f"{_rows(unknown_related)} valid on the as-of date {'has' if one else 'have'} a "
                    "related_patient_id (or, in a row from the parent's side or a sibling row, a patient_id) that "
                    "is a placeholder for an unknown person (such as 0, NULL or UNKNOWN): "
                    f"{'it was' if one else 'they were'} not used for linking",
                    "have the export leave out the rows of a relative it does not know",
                )
            )
        )
    if implausible:
        one = implausible == 1
        warnings.append(
            str(
                Problem(
                    "relationships",
                    f"{_rows(implausible)} valid on the as-of date name{'s' if one else ''} as a child's parent "
                    f"someone fewer than {MIN_MOTHER_GAP_YEARS} years older than the child (a step-parent, partner "
                    f"or carer: younger than the child) and {'was' if one else 'were'} not used for linking",
                    "the file may be written the other way round: patient_id is the child and related_patient_id "
                    "is the child's <relationship> (words such as 'son' or 'daughter' are read as the reverse link)",
                )
            )
        )
    return warnings


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _family_ids(con: duckdb.DuckDBPyConnection) -> None:
    """``family_of_linked(patient_id, family_id)``: connected components of the linked patients (scipy's, in
    C: a million patients take a fraction of a second). A patient with no link is a family of one; see
    ``family_id_sql``."""
    # scipy takes 0.1 s to import: only here, so `casefind schema`, `version` and --help start without it
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    con.execute(  # node numbers are arbitrary: a family's id comes from its members, not from them
        "CREATE OR REPLACE TEMP TABLE linked AS "
        "SELECT patient_id, CAST(row_number() OVER () - 1 AS INTEGER) AS node FROM "
        "(SELECT child_id AS patient_id FROM links UNION SELECT relative_id FROM links)"
    )
    edges = con.execute(
        "SELECT c.node AS a, r.node AS b FROM links "
        "JOIN linked c ON c.patient_id = links.child_id JOIN linked r ON r.patient_id = links.relative_id"
    ).fetchnumpy()
    [(nodes,)] = con.execute("SELECT count(*) FROM linked").fetchall()
    graph = coo_matrix((np.ones(len(edges["a"]), dtype=np.int8), (edges["a"], edges["b"])), shape=(nodes, nodes))
    _, component = connected_components(graph, directed=False)
    con.register("component_df", pa.table({"node": np.arange(nodes, dtype=np.int32), "component": component}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE family_of_linked AS SELECT l.patient_id, "
        "'F' || substr(md5(min(l.patient_id) OVER (PARTITION BY c.component)), 1, 8) AS family_id "
        "FROM linked l JOIN component_df c USING (node)"
    )
    con.unregister("component_df")


ADULT_SIBLING = "adult sibling in household"  # a household adult who is the child's sibling too


def annotated_links_sql(links: str) -> str:
    """SELECT every row of ``links`` (a relation shaped like ``links``), with ``pregnancy_not_carried``: why an
    expectant relative's pregnancy does not reach the row's child (module docstring), or NULL when it does;
    and a household adult who is also the child's sibling (a brother of 19 at home) worded ``ADULT_SIBLING``,
    not "household adult", which reads as a parent figure.

    A link's sibling rows are looked for in ``links`` itself, so it must hold every link of each of its children,
    or every link to each of its relatives (as the few links a query needs do; not run over the millions of
    ``links``: a quarter of a second at ICB scale, against 0.04 s for the links a list needs)."""
    return f"""
        WITH household AS (SELECT child_id, relative_id FROM {links} WHERE role = 'household_adult'),
        born AS (  -- dates of birth of the few patients on household links, not a join of every patient
          SELECT patient_id, date_of_birth FROM patients
          WHERE patient_id IN (SELECT child_id FROM household UNION SELECT relative_id FROM household)
        )
        SELECT l.* REPLACE (CASE WHEN l.relation = 'household adult' AND s.child_id IS NOT NULL THEN '{ADULT_SIBLING}'
                                 ELSE l.relation END AS relation),
               CASE WHEN l.role NOT IN ('parent', 'household_adult') THEN 'not a parent or household adult'
                    WHEN l.role = 'parent' THEN NULL
                    WHEN s.child_id IS NOT NULL THEN 'a sibling of the child, not a parent'
                    WHEN c.date_of_birth < r.date_of_birth + INTERVAL {MIN_MOTHER_GAP_YEARS} YEAR
                      THEN 'fewer than {MIN_MOTHER_GAP_YEARS} years older than the child, so not taken for a parent'
               END AS pregnancy_not_carried
        FROM {links} l
        LEFT JOIN (SELECT DISTINCT child_id, relative_id FROM {links} WHERE role = 'sibling') s
          ON s.child_id = l.child_id AND s.relative_id = l.relative_id
        LEFT JOIN born c ON c.patient_id = l.child_id
        LEFT JOIN born r ON r.patient_id = l.relative_id"""


def family_id_sql(patient_id: str, linked_family_id: str) -> str:
    """SQL for a patient's ``family_id``: ``linked_family_id`` (from a LEFT JOIN to ``family_of_linked``) or,
    for a patient with no link, a family of one. Worked out only for the patients a query needs, not for
    every patient of an ICB-sized extract."""
    return f"coalesce({linked_family_id}, 'F' || substr(md5({patient_id}), 1, 8))"


def concern_id(group: int) -> str:
    """The scan's pseudo-criterion id for the protocol's ``group``-th group of concern codes
    (``Concern.code_groups``, duckdb_engine.code_map): each group is its own "latest code wins"."""
    return f"__concern_{group}__"


def not_ended_sql(start: str, end: str) -> str:
    """SQL: the latest start code (row ``start`` of ``latest``) is not followed by a later end code (row ``end``,
    joined on the same patient and criterion, or NULL): "latest code wins", and an end code on the day of the
    start does not close it. Coded criteria with an end and the protocol's concern codes both use it."""
    return f"({end}.ev IS NULL OR {end}.ev.date <= {start}.ev.date)"


def concern_table(
    con: duckdb.DuckDBPyConnection, as_of: date, window_starts: list[date | None], criteria_met: pa.Table
) -> None:
    """``concern(patient_id, evidence)``: open flags, concern codes (from the scan's ``concern_id`` rows: for
    each group of concern codes, the latest code, in the group's window (``window_starts``, one per group, None
    for none) and not followed by a later end code of the group, ``not_ended_sql``) and the concern
    criteria met on patients' own records (``criteria_met``: patient_id, label, term, code, date), as 'Subject
    to a child protection plan: <term> 2026-01-05'.

    ``linked_concern(patient_id, evidence)``: the concern of the relatives each patient is linked to (parents,
    household adults, siblings), for the patients with any. The concern of a patient's wider family (a
    half-sibling's father's partner's child) is not theirs: in blended and foster families one flag would
    otherwise open every family linked to it."""
    con.register("criteria_met_arrow", criteria_met)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE concern AS
        SELECT patient_id, string_agg(evidence, '; ' ORDER BY evidence) AS evidence FROM (
          SELECT patient_id, 'concern flag raised ' || strftime(raised_on, '%Y-%m-%d') AS evidence
          FROM concerns WHERE raised_on <= $as_of AND (resolved_on IS NULL OR resolved_on > $as_of)
          UNION
          SELECT patient_id, label || coalesce(': ' || coalesce(term, code), '') || ' ' || strftime(date, '%Y-%m-%d')
          FROM criteria_met_arrow
          UNION
          SELECT s.patient_id, coalesce(s.ev.term, s.ev.code) || ' ' || strftime(s.ev.date, '%Y-%m-%d')
          FROM latest s
          JOIN (SELECT unnest($ids::VARCHAR[]) AS criterion_id, unnest($froms::DATE[]) AS window_start) g
            ON g.criterion_id = s.criterion_id
          LEFT JOIN latest e ON e.patient_id = s.patient_id AND e.criterion_id = s.criterion_id AND e.role = 'end'
          WHERE s.role = 'start' AND (g.window_start IS NULL OR s.ev.date >= g.window_start)
            AND {not_ended_sql("s", "e")}
        ) GROUP BY patient_id
        """,
        {"as_of": as_of, "ids": [concern_id(i) for i in range(len(window_starts))], "froms": window_starts},
    )
    con.unregister("criteria_met_arrow")
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE linked_concern AS
        SELECT l.child_id AS patient_id,
               string_agg(DISTINCT 'patient ' || c.patient_id || ': ' || c.evidence, '; '
                          ORDER BY 'patient ' || c.patient_id || ': ' || c.evidence) AS evidence
        FROM links l JOIN concern c ON c.patient_id = l.relative_id
        GROUP BY l.child_id
        """
    )
