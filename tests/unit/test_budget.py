"""The sliding-window budget of the AML and text doors: slowed, never blocked."""

from __future__ import annotations

from ivr.budget import SlidingBudget


def test_a_key_over_its_budget_is_refused_until_the_window_moves_and_refusals_do_not_count() -> None:
    now = [0.0]
    budget = SlidingBudget(2, 10.0, lambda: now[0])
    assert [budget.allow("0812") for _ in range(3)] == [True, True, False]
    assert budget.allow("0813")  # another key has its own budget
    now[0] = 5.0
    assert not budget.allow("0812")  # retried within the window: still refused, and not counted
    now[0] = 10.5
    assert budget.allow("0812")  # the first two left the window; the refused tries never entered it
