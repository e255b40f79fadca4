"""Email normalisation: one spelling per account, look-alikes refused (no I/O)."""

from __future__ import annotations

import pytest

from redisgate.control.emails import EmailProblem, normalize_email

CYRILLIC_O = "\u043e"
FULLWIDTH_ADMIN = "\uff41\uff44\uff4d\uff49\uff4e"  # admin in fullwidth letters


def test_nfkc_folds_fullwidth_and_the_domain_is_lowered() -> None:
    assert normalize_email(FULLWIDTH_ADMIN + "@Example.COM") == "admin@example.com"
    assert normalize_email("admin\uff20example.com") == "admin@example.com"  # fullwidth @
    assert normalize_email("  Alice@Example.org. ") == "Alice@example.org"  # local case kept


@pytest.mark.parametrize(
    "email",
    [
        "admin@exa\u200bmple.com",  # zero-width space in the domain
        "ad\u200dmin@example.com",  # zero-width joiner
        "ad\u00admin@example.com",  # soft hyphen
        "\ufeffadmin@example.com",  # BOM
        "admin@example.com\u2060",  # word joiner
        "ad\u202emin@example.com",  # right-to-left override
        "ad min@example.com",
    ],
)
def test_invisible_characters_are_refused(email: str) -> None:
    with pytest.raises(EmailProblem, match="invisible or control"):
        normalize_email(email)


@pytest.mark.parametrize(
    "email",
    [
        f"adm{CYRILLIC_O}n@example.com",  # Cyrillic o in a Latin local part
        f"admin@ex{CYRILLIC_O}mple.com",  # ... in a domain label
        "admin@g\u03bfogle.com",  # Greek omicron
        f"john.sm{CYRILLIC_O}th@example.com",  # in one part of a dotted local part
    ],
)
def test_mixed_script_look_alikes_are_refused(email: str) -> None:
    with pytest.raises(EmailProblem, match="mixes letters of different scripts"):
        normalize_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "\u0438\u0432\u0430\u043d@example.com",  # Ivan in Cyrillic only, a real mailbox
        "\u7530\u4e2d\u3055\u3093@example.jp",  # Tanaka-san: Han with Hiragana
        "user+tag.2024@example.co.uk",
        "m\u00fcller@b\u00fccher.de",  # Latin with diacritics
    ],
)
def test_real_addresses_in_one_script_are_accepted(email: str) -> None:
    assert normalize_email(email) == email


@pytest.mark.parametrize("email", ["no-at-sign", "@example.com", "a@", "a@localhost", "a@b..c"])
def test_malformed_addresses_are_refused(email: str) -> None:
    with pytest.raises(EmailProblem):
        normalize_email(email)
