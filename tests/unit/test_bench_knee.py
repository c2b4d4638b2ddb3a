"""The benchmark's knee: where a load ladder stops meeting the targets and why, said in
words instead of a traceback (issue 15). Pure: made-up steps, no stack."""

from __future__ import annotations

from bench.knee import knee, misses
from bench.report import cpu_targets
from bench.step import Step


def step(rate: int, *, system: str = "B", phase: str = "ivr", failed: int = 0, answer_ms: float = 5.0, rtp: int = 0,
         left: int = 0, peak: int = 0, exited: bool = False) -> Step:
    attempted = rate * 20
    s = Step(system, phase, rate, 10.0, attempted=attempted, answered=attempted - failed, failed=failed,
             peak_calls=peak or rate * 10, left_channels=left, rtp_refused=rtp, app_exited=exited)
    s.answer_ms = [answer_ms] * (attempted - failed)
    if phase == "operator":
        s.delay_ms = [20.0] * (attempted - failed)  # every answered caller rang an operator
    return s


def test_a_ladder_that_met_every_target_says_the_knee_is_above_it() -> None:
    found = knee([step(5), step(20), step(40, peak=800)], "B", "ivr")
    assert found is not None and found.first_missed is None
    assert found.describe() == "B (ivr112): every step met the targets, up to 40/s (800 at once): the knee is above the ladder"


def test_the_first_step_with_failed_calls_is_the_knee_and_says_why() -> None:
    ladder = [step(20, peak=400), step(40, peak=800), step(60, failed=312, rtp=388, left=17, peak=1000), step(80, failed=900)]
    found = knee(ladder, "B", "ivr")
    assert found is not None
    assert found.last_met is not None and found.last_met.rate == 40
    assert found.first_missed is not None and found.first_missed.rate == 60
    assert found.describe() == (
        "B (ivr112): last step that met the targets 40/s (800 at once); first that did not 60/s (1000 at once): "
        "RTP ports exhausted (388 calls found no free port); 312 of 1200 calls failed; "
        "17 channels still up after the callers were done (hung up by the bench)"
    )


def test_a_slow_answer_misses_the_target_without_a_failed_call() -> None:
    assert misses(step(30, answer_ms=80.0)) == ["answer p99 80 ms over 50 ms"]
    found = knee([step(10), step(30, answer_ms=80.0)], "B", "ivr")
    assert found is not None and found.why == ("answer p99 80 ms over 50 ms",)


def test_a_step_that_meets_the_targets_again_above_the_knee_is_named() -> None:
    found = knee([step(10), step(20, answer_ms=70.0), step(30)], "B", "ivr")
    assert found is not None and found.first_missed is not None and found.first_missed.rate == 20
    assert found.describe().endswith("(met them again at 30/s: noise, or a recovery)")


def test_each_system_and_phase_has_its_own_knee() -> None:
    ladder = [step(10, system="A"), step(60, system="A", failed=5), step(10), step(60, exited=True, failed=1200),
              step(5, phase="operator")]
    a, b = knee(ladder, "A", "ivr"), knee(ladder, "B", "ivr")
    assert a is not None and a.why == ("5 of 1200 calls failed",)
    assert b is not None and b.why == ("1200 of 1200 calls failed", "the app exited", "no call answered")
    operator = knee(ladder, "B", "operator")
    assert operator is not None and operator.first_missed is None
    assert knee(ladder, "A", "operator") is None


def test_a_ladder_whose_first_step_missed_says_no_step_met_the_targets() -> None:
    found = knee([step(60, failed=10), step(80, failed=20)], "B", "ivr")
    assert found is not None and found.last_met is None
    assert found.describe().startswith("B (ivr112): no step met the targets; first that did not 60/s")


def test_the_cpu_target_is_said_per_engine_with_its_ratio() -> None:
    sqlite = Step("B", "ivr", 20, 10.0, store="sqlite", attempted=160, app_cpu_s=1.44, store_cpu_s=0.48)
    pg = Step("B", "ivr", 20, 10.0, store="postgresql", attempted=160, app_cpu_s=2.4, store_cpu_s=0.96)
    rows = cpu_targets([Step("A", "ivr", 20, 10.0, attempted=160), sqlite, pg,
                        Step("B", "operator", 5, 3.0, store="sqlite", attempted=40, app_cpu_s=1.2)])
    assert [(what, met) for what, _, met in rows] == [
        ("app CPU <= 10 ms per IVR call on sqlite (issue 15)", True),
        ("app CPU <= 10 ms per IVR call on postgresql (issue 15)", False),
    ]
    assert rows[0][1].startswith("9.0 ms = 0.90x the target at 20/s (store thread 3.0 ms, event loop and the rest 6.0 ms")
    assert rows[1][1].startswith("15.0 ms = 1.50x the target")
