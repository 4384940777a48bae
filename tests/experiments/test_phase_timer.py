"""The phase timer of a run: what it records, what it prints, and the phases a run records."""

import time

import pytest

from keras_mlcl.experiments.phase_timer import PhaseTimer


def check_timings(timings, phases):
    """`timings` holds `phases` then `"total"`, non-negative floats summing to at most it."""
    assert list(timings) == [*phases, "total"]
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert sum(timings[phase] for phase in phases) <= timings["total"]


@pytest.mark.backend_independent
def test_phases_are_timed_in_order_and_a_repeated_phase_adds_up():
    timer = PhaseTimer()
    with timer.phase("load"):
        time.sleep(0.02)
    with timer.phase("train"):
        time.sleep(0.01)
    with timer.phase("load"):
        time.sleep(0.02)
    timings = timer.record()
    check_timings(timings, ["load", "train"])
    assert timings["load"] >= 0.04 and 0.01 <= timings["train"] < timings["load"]
    assert timings["total"] >= 0.05


@pytest.mark.backend_independent
def test_labelled_phases_are_reported_when_verbose_and_a_failure_is_still_timed(capsys):
    timer = PhaseTimer(verbose=1)
    with timer.phase("probe", "linear probe"):
        pass
    with timer.phase("save"):  # no label: nothing printed
        pass
    with pytest.raises(KeyError), timer.phase("plot", "t-SNE plot"):
        raise KeyError("boom")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("keras-mlcl: linear probe ... ") and err[0].endswith(" s")
    assert err[1:] == ["keras-mlcl: t-SNE plot ... failed"]
    assert list(timer.seconds) == ["probe", "save", "plot"]

    with PhaseTimer(verbose=0).phase("probe", "linear probe"):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.backend_independent
def test_total_is_not_a_phase():
    with pytest.raises(ValueError, match="`key` should name a phase"):
        with PhaseTimer().phase("total"):
            pass
