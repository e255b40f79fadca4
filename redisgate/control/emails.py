"""Email addresses as account names: one spelling per account, no look-alikes.

An email names an account, so two strings a person reads as the same address must not make
two accounts. Before anything is stored or looked up, `normalize_email`:

1. refuses invisible characters (Unicode format characters such as the zero-width space and
   joiner, the soft hyphen and the BOM; controls; private-use and unassigned code points):
   `ad<U+200B>min@example.com` would otherwise display like `admin@example.com`;
2. folds with NFKC, so fullwidth and other compatibility forms become their plain letters
   (`admin` typed in fullwidth letters is `admin`);
3. lowers the domain (domains are case-insensitive by definition) and drops a trailing dot;
   the local part keeps the case it was typed in, for display and delivery, while uniqueness
   and lookups ignore its case (`users_email_key` is on `lower(email)`): RFC 5321 allows a
   case-sensitive local part, but no mainstream provider uses one, and two accounts that
   differ only in case would be look-alikes themselves;
4. refuses a local part or domain label whose letters come from more than one script
   (`admin` with a Cyrillic o): mixing Latin with Cyrillic or Greek is how look-alikes are
   made, and no real mailbox needs it. Han, Hiragana and Katakana count as one script
   (Japanese), as do Han and Hangul (Korean). A label wholly in another script (a
   Cyrillic-only address) is accepted: telling an all-Cyrillic `paypal` from the Latin one
   would need the Unicode confusables table, which we do not ship.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 254
_INVISIBLE = frozenset({"Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})
# Scripts that are written together; each maps to one group.
_SCRIPT_GROUPS = {"CJK": "Han", "HIRAGANA": "Han", "KATAKANA": "Han", "HANGUL": "Han"}
_LOCAL_SEPARATORS = ".+-_"


class EmailProblem(ValueError):
    """Why a string is not acceptable as an account's email (a sentence fragment)."""


def normalize_email(raw: str) -> str:
    """The stored form of `raw`, or EmailProblem saying what is wrong with it."""
    text = raw.strip()
    for ch in text:
        if unicodedata.category(ch) in _INVISIBLE:
            raise EmailProblem(
                f"must not contain invisible or control characters (found U+{ord(ch):04X})"
            )
    text = unicodedata.normalize("NFKC", text)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise EmailProblem("must be an email address like name@example.com")
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise EmailProblem("must be an email address like name@example.com")
    for part in [*_split_local(local), *labels]:
        scripts = _scripts(part)
        if len(scripts) > 1:
            names = " and ".join(sorted(scripts))
            raise EmailProblem(
                f"mixes letters of different scripts ({names}) in {part!r}: look-alike "
                "addresses are not allowed"
            )
    email = f"{local}@{domain}"
    if len(email) > MAX_LENGTH:
        raise EmailProblem(f"must be at most {MAX_LENGTH} characters")
    return email


def _split_local(local: str) -> list[str]:
    parts = [local]
    for sep in _LOCAL_SEPARATORS:
        parts = [piece for part in parts for piece in part.split(sep)]
    return [p for p in parts if p]


def _scripts(label: str) -> set[str]:
    """The scripts of the letters in `label` (digits, marks and punctuation have none)."""
    found = set()
    for ch in label:
        if not unicodedata.category(ch).startswith("L"):
            continue
        first = unicodedata.name(ch, "UNKNOWN").split()[0]
        found.add(_SCRIPT_GROUPS.get(first, first.title()))
    return found
