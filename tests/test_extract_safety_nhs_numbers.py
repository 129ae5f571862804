"""Two patient records with one NHS number (safety review, finding D): most often one person registered twice,
whose history is split between the records, so the warning says what may be missed and what to do."""

from __future__ import annotations

from datetime import date

from casefind import api

AS_OF = date(2026, 11, 24)
CP = "342191000000101"  # Subject to child protection plan


def test_one_nhs_number_on_two_records_warns_that_a_plan_on_the_other_record_is_not_seen(make_extract):
    folder = make_extract(
        patients=(
            "patient_id | nhs_number   | date_of_birth\n"
            "kid-a      | 9434765919   | 2016-05-01\n"
            "kid-b      | 943 476 5919 | 2016-05-01\n"  # the same child, registered a second time
            "kid-c      | 9990000050   | 2017-01-01"
        ),
        events=f"patient_id | code | date\nkid-b | {CP} | 2026-06-01",
    )
    result = api.build_list(folder, as_of=AS_OF)
    shared = [w for w in result.info.warnings if "share one NHS number" in w]
    assert shared == [
        "patients.csv, rows 2, 3, column 'nhs_number': 2 patients share one NHS number: records sharing a number are "
        "most often one person registered twice, whose history is then split between them, so a child protection "
        "plan or a risk factor coded on one record is not seen when the family is linked through another (or the "
        "number was typed into the wrong record); each record is still considered on its own\n"
        "  HINT: merge the records in the clinical system (or correct the number); until then, check both records "
        "before the meeting"
    ]
    assert not any(s in shared[0] for s in ("9434765919", "943 476", "kid-")), "no identifier is shown"
