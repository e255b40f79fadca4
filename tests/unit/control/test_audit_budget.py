"""AuditBudget with an injected clock."""

from __future__ import annotations

from redisgate.control.audit_budget import AuditBudget


def test_rows_per_address_per_window_and_the_suppressed_count() -> None:
    budget = AuditBudget(per_window=2, window_s=60)
    assert [budget.admit("6.6.6.6", t) for t in (0, 1, 2, 3, 4)] == [0, 0, None, None, None]
    assert budget.admit("1.1.1.1", 5) == 0  # other addresses have their own budget
    assert budget.admit("6.6.6.6", 60) == 3  # the next row stands for the three left out
    assert budget.admit("6.6.6.6", 61) == 0
    assert budget.admit("6.6.6.6", 62) is None
