"""Answers to group messages (issue 10 point 8): the reading of replies, as a table."""

from __future__ import annotations

import pytest

from tocsin.campaigns.answers import (
    OpenCall,
    check_options,
    fold,
    instructions,
    is_possible_scanner,
    next_letter,
    read_reply,
)
from tocsin.core.errors import InputError

YES_NO = OpenCall("A", ("Yes", "No"))
OUI_NON = OpenCall("A", ("Oui", "Non", "Plus tard"))
THREE = (OpenCall("A", ("Yes", "No")), OpenCall("B", ("Ja", "Nee", "Misschien")))

#: reply, open calls, expected (letter, option, reason)
TABLE = [
    # one call open: digits, letter+digit, keywords in four languages
    ("1", [YES_NO], ("A", 1, None)),
    ("a 1", [YES_NO], ("A", 1, None)),
    ("A1", [YES_NO], ("A", 1, None)),
    ("  a-1 ", [YES_NO], ("A", 1, None)),
    ("oui", [YES_NO], ("A", 1, None)),
    ("OUI", [YES_NO], ("A", 1, None)),
    ("ja", [YES_NO], ("A", 1, None)),
    ("Ja!", [YES_NO], ("A", 1, None)),
    ("yes", [YES_NO], ("A", 1, None)),
    ("Yes.", [YES_NO], ("A", 1, None)),
    ("jawohl", [YES_NO], ("A", 1, None)),
    ("2", [YES_NO], ("A", 2, None)),
    ("non", [YES_NO], ("A", 2, None)),
    ("nee", [YES_NO], ("A", 2, None)),
    ("Nein", [YES_NO], ("A", 2, None)),
    ("no", [YES_NO], ("A", 2, None)),
    ("a no", [YES_NO], ("A", 2, None)),
    # labels in another language than the reply
    ("yes", [OUI_NON], ("A", 1, None)),
    ("nein", [OUI_NON], ("A", 2, None)),
    ("plus tard", [OUI_NON], ("A", 3, None)),
    ("PLUS  TARD", [OUI_NON], ("A", 3, None)),
    ("3", [OUI_NON], ("A", 3, None)),
    ("Réponse A1", [YES_NO], ("A", None, "unrecognised")),
    # a wrong letter with one call open is a slip
    ("b1", [YES_NO], ("A", 1, None)),
    # several calls open: the letter chooses
    ("B2", list(THREE), ("B", 2, None)),
    ("b 3", list(THREE), ("B", 3, None)),
    ("a1", list(THREE), ("A", 1, None)),
    ("b oui", list(THREE), ("B", 1, None)),
    ("misschien", list(THREE), ("B", 3, None)),
    ("1", list(THREE), (None, None, "letter_needed")),
    ("yes", list(THREE), (None, None, "letter_needed")),
    ("C1", list(THREE), ("C", None, "unknown_letter")),
    ("a3", list(THREE), ("A", None, "out_of_range")),
    # unreadable
    ("", [YES_NO], (None, None, "empty")),
    ("   ", [YES_NO], (None, None, "empty")),
    ("?!", [YES_NO], (None, None, "empty")),
    ("7", [YES_NO], ("A", None, "out_of_range")),
    ("0", [YES_NO], ("A", None, "out_of_range")),
    ("peut-être", [YES_NO], ("A", None, "unrecognised")),
    ("12", [YES_NO], ("A", None, "out_of_range")),
    ("1", [], (None, None, "no_open_call")),
]


@pytest.mark.parametrize(("reply", "calls", "expected"), TABLE)
def test_read_reply(reply: str, calls: list[OpenCall], expected: tuple) -> None:
    r = read_reply(reply, calls)
    assert (r.letter, r.option, r.reason) == expected
    assert r.ok == (expected[1] is not None)


def test_fold() -> None:
    assert fold("  Plus TARD ") == "plus tard"
    assert fold("Ééè-à") == "eee a"


@pytest.mark.parametrize(("options", "code"), [
    (["Yes"], "answers_count"),
    ([str(i) for i in range(10)], "answers_count"),
    (["Yes", "yes "], "answers_alike"),
    (["Oui", "Oui!"], "answers_alike"),
    (["Yes", "x" * 41], "answers_long"),
])
def test_bad_options(options: list[str], code: str) -> None:
    with pytest.raises(InputError) as exc:
        check_options(options)
    assert exc.value.code == code and exc.value.field == "answers"


def test_good_options_and_instructions() -> None:
    assert check_options([" Yes ", "No", ""]) == ["Yes", "No"]
    assert instructions("B", ["Oui", "Non"], "fr") == "Répondez B1 = Oui, B2 = Non"
    assert instructions("A", ["Ja", "Nee"], "nl") == "Antwoord A1 = Ja, A2 = Nee"
    assert next_letter(["A", "B"]) == "C"
    assert is_possible_scanner(3.0) and not is_possible_scanner(10.0)
    assert not is_possible_scanner(None)
