"""Identifier checks: SNOMED CT Verhoeff check digit, SCTID structure, NHS number modulus 11."""

from __future__ import annotations

# How a spreadsheet writes a long code it took for a number (3.42191E+14, 3.42191e14, 3E+14,
# 342191000000101.0): the digits are lost. An exponent comes with a decimal point or a sign: digits, E and
# digits alone ('7E123') are the shape of a Read code. A regular expression both Python's re and DuckDB's
# regexp functions read the same way.
SPREADSHEET_NUMBER = r"[0-9]+[.][0-9]+[eE][+-]?[0-9]+|[0-9]+[eE][+-][0-9]+|[0-9]{6,}[.]0+"

# A spreadsheet keeps 15 significant digits of a number: 1188261000000103 saved from a column formatted as
# Number comes back as 1188261000000100, a different, invalid code that no codelist holds.
SPREADSHEET_DIGITS = 15


def spreadsheet_cut(code: str) -> str | None:
    """``code`` as a spreadsheet saves it when it took it for a number, or None when that leaves it as it is
    (15 digits or fewer, already ending in zeros, or not all digits)."""
    if not code.isdigit() or len(code) <= SPREADSHEET_DIGITS:
        return None
    cut = code[:SPREADSHEET_DIGITS] + "0" * (len(code) - SPREADSHEET_DIGITS)
    return cut if cut != code else None


# Dihedral group D5 tables from the SNOMED CT Release File Specification, section 6.4.1.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)


def _permutations() -> tuple[tuple[int, ...], ...]:
    p = [tuple(range(10)), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)]
    for _ in range(2, 8):
        p.append(tuple(p[-1][p[1][j]] for j in range(10)))
    return tuple(p)


_P = _permutations()
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_valid(digits: str) -> bool:
    """True when ``digits`` (including its final check digit) passes the Verhoeff check."""
    if not digits.isdigit():
        return False
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def verhoeff_check_digit(digits: str) -> str:
    """The check digit to append to ``digits``."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return str(_INV[c])


def sctid_problem(code: str) -> str | None:
    """Why ``code`` is not a valid SNOMED CT concept identifier, or None when it is."""
    if not code.isdigit() or code.startswith("0"):
        return "a SNOMED CT identifier is 6 to 18 digits with no leading zero"
    if not 6 <= len(code) <= 18:
        return f"a SNOMED CT identifier has 6 to 18 digits, this has {len(code)}"
    if not verhoeff_valid(code):
        return "the Verhoeff check digit is wrong (a typing error?)"
    partition = code[-3:-1]
    if partition in ("01", "11"):
        return "this is a description identifier, not a concept identifier"
    if partition not in ("00", "10"):
        return f"partition '{partition}' is not a concept partition"
    return None


def nhs_number_valid(value: str) -> bool:
    """True for a 10-digit NHS number whose modulus 11 check digit is right (spaces allowed)."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])
