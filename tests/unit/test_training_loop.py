"""The shared training loop: it keeps the best validation checkpoint, stops early, respects its
budgets, gives a new head its own learning rate, and fails a run that never leaves chance."""

from __future__ import annotations

import math
import time

import pytest
import torch

from optimizer.recipes.loop import Schedule, StuckAtChance, train


class Pair(torch.nn.Module):
    """A body weight and a head weight, each pulled towards a target by its loss."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Parameter(torch.zeros(1))
        self.classifier = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.classifier.weight)


def squared_loss(model: Pair, target: float = 3.0):
    def loss_of(batch):
        return (model.body - target).pow(2).sum() + (model.classifier.weight - target).pow(2).sum(), 1
    return loss_of


def test_the_best_check_is_kept_when_validation_peaks_then_falls():
    torch.manual_seed(0)
    model = Pair()
    scores = iter([0.50, 0.80, 0.60, 0.40, 0.30, 0.20])
    at_check = []

    def on_eval(check: int) -> float:
        at_check.append(model.body.item())
        return next(scores)

    stats = train(model, lambda epoch: [0] * 5, squared_loss(model),
                  Schedule(learning_rate=0.1, epochs=6, patience=3), on_eval=on_eval)
    assert stats.checks == [0.50, 0.80, 0.60, 0.40, 0.30]  # stopped 3 checks after the peak
    assert stats.best_check == 2 and stats.stop_reason.startswith("early stop")
    assert model.body.item() == pytest.approx(at_check[1])  # the peak's weights, not the last ones
    assert at_check[-1] != pytest.approx(at_check[1])


@pytest.mark.parametrize("patience_from,steps,best", [(0.0, 40, 1), (0.5, 80, 5)])
def test_patience_stops_nothing_before_its_share_of_the_schedule(patience_from, steps, best):
    # Three flat checks at the peak rate (checks 2-4, steps 20-40 of 100): counted from the first
    # check they end the run at its first best; from half-way, the run goes on to a better one.
    model = Pair()
    scores = iter([0.8, 0.7, 0.7, 0.7, 0.9, 0.6, 0.6, 0.6, 0.6, 0.6])
    stats = train(model, lambda epoch: [0] * 10, squared_loss(model),
                  Schedule(learning_rate=0.01, epochs=10, patience=3, patience_from=patience_from,
                           fail_if_stuck=False),
                  on_eval=lambda check: next(scores))
    assert stats.steps == steps and stats.best_check == best
    assert stats.stop_reason == "early stop: no better validation score in 3 checks"


def test_checks_held_back_by_the_gate_count_and_the_reason_says_how_many():
    # flat from check 1: patience has run out at check 4 (step 40), the gate opens at step 50
    model = Pair()
    stats = train(model, lambda epoch: [0] * 10, squared_loss(model),
                  Schedule(learning_rate=0.01, epochs=10, patience=3, patience_from=0.5, fail_if_stuck=False),
                  on_eval=lambda check: 0.8 if check == 1 else 0.7)
    assert stats.steps == 50 and stats.best_check == 1
    assert stats.stop_reason == "early stop: no better validation score in 4 checks"


def test_a_new_head_learns_at_its_own_rate():
    model = Pair()
    train(model, lambda epoch: [0] * 4, squared_loss(model),
          Schedule(learning_rate=1e-4, head_learning_rate=0.5, epochs=1, fail_if_stuck=False))
    assert abs(model.classifier.weight.item()) > 100 * abs(model.body.item())


def test_the_step_budget_ends_training_and_the_end_point_is_checked():
    model = Pair()
    stats = train(model, lambda epoch: [0] * 10, squared_loss(model),
                  Schedule(learning_rate=0.01, epochs=3, max_steps=7, fail_if_stuck=False),
                  on_eval=lambda check: float(check))
    assert stats.steps == 7 and stats.stop_reason.startswith("step budget")
    assert len(stats.checks) == 1  # no epoch ended: the point where the budget stopped it is scored


def test_a_loss_that_stays_at_chance_fails_the_run():
    model = Pair()
    chance = math.log(40)

    def flat(batch):
        return model.body.sum() * 0 + chance, 1

    with pytest.raises(StuckAtChance, match="starting level"):  # judged after 60 steps
        train(model, lambda epoch: [0] * 20, flat, Schedule(learning_rate=1e-3, epochs=4))


def rising(model: Pair, start: float, end: float, steps: int = 60):
    """A loss that climbs linearly from ``start`` to ``end`` over ``steps`` steps."""
    calls = [0]

    def loss_of(batch):
        calls[0] += 1
        return model.body.sum() * 0 + start + (end - start) * min(calls[0], steps) / steps, 1
    return loss_of


def test_a_run_that_starts_below_chance_fails_only_if_it_climbs_back_to_chance():
    # a probed head starts at 0.55; a loss that rises to 1.2 has not returned to ln(40) = 3.69
    chance = math.log(40)
    model = Pair()
    stats = train(model, lambda epoch: [0] * 20, rising(model, 0.55, 1.2),
                  Schedule(learning_rate=1e-3, epochs=4, chance_loss=chance))
    assert stats.steps == 80
    with pytest.raises(StuckAtChance, match="climbed back to chance level"):
        model = Pair()
        train(model, lambda epoch: [0] * 20, rising(model, 0.55, chance), Schedule(learning_rate=1e-3, epochs=4,
                                                                                   chance_loss=chance))
    with pytest.raises(StuckAtChance, match="starting level"):  # without chance_loss: judged by its start
        model = Pair()
        train(model, lambda epoch: [0] * 20, rising(model, 0.55, 1.2), Schedule(learning_rate=1e-3, epochs=4))


def test_a_falling_loss_is_not_stuck():
    model = Pair()
    stats = train(model, lambda epoch: [0] * 20, squared_loss(model), Schedule(learning_rate=0.3, epochs=2))
    assert stats.losses[-1] < stats.losses[0] / 10


def slow_squared_loss(model: Pair, seconds: float = 0.01, first_ten_seconds: float | None = None):
    """``squared_loss`` taking ``seconds`` a step (``first_ten_seconds`` each of the first ten
    steps, when given), for the time budgets."""
    loss = squared_loss(model)
    calls = [0]

    def loss_of(batch):
        calls[0] += 1
        time.sleep(first_ten_seconds if first_ten_seconds is not None and calls[0] <= 10 else seconds)
        return loss(batch)
    return loss_of


def test_a_time_budget_sets_how_many_steps_the_schedule_spans():
    model = Pair()
    stats = train(model, lambda epoch: [0] * 100, slow_squared_loss(model),
                  Schedule(learning_rate=0.01, epochs=2, time_budget_s=0.4, fail_if_stuck=False))
    assert stats.stop_reason.startswith("time budget")
    # 200 steps planned; the budget affords about 40, and the decay is fitted to those
    assert 10 < stats.planned_steps < 80 and abs(stats.steps - stats.planned_steps) <= 0.5 * stats.planned_steps


def test_a_budget_shorter_than_the_planned_warm_up_reaches_the_full_rate_and_anneals():
    model = Pair()
    positions = [0.0]
    stats = train(model, lambda epoch: [0] * 1000, slow_squared_loss(model),
                  Schedule(learning_rate=0.01, epochs=1, time_budget_s=0.5, fail_if_stuck=False),
                  on_step=lambda step, loss: positions.append(model.body.item()))
    # Adam moves a weight with a steady gradient by about the learning rate each step, so the
    # steps show the schedule. 6% of 1,000 planned steps is a 60-step warm-up, longer than the
    # ~45 steps the budget affords: it shrinks with the schedule, so the full rate is reached
    # and the last steps have annealed (an unshrunk warm-up would still be rising at the end).
    moves = [b - a for a, b in zip(positions, positions[1:])]
    assert stats.planned_steps < 60
    assert max(moves) > 0.0085 and moves[-1] < 0.3 * max(moves)  # unshrunk: at most 45/60 of 0.01


def test_slow_first_steps_do_not_cut_the_schedule_short():
    model = Pair()
    positions = [0.0]
    # The first 10 steps alone would afford ~30 of the 200 planned; all 200 fit in the budget.
    stats = train(model, lambda epoch: [0] * 100, slow_squared_loss(model, 0.0005, first_ten_seconds=0.03),
                  Schedule(learning_rate=0.01, epochs=2, time_budget_s=1.0, fail_if_stuck=False),
                  on_step=lambda step, loss: positions.append(model.body.item()))
    moves = [b - a for a, b in zip(positions, positions[1:])]
    assert stats.stop_reason == "epochs done" and stats.planned_steps == 200
    # still learning mid-way (a schedule fitted to the first steps alone is at zero by step 40)
    assert min(moves[90:110]) > 0.003


def test_a_plateau_at_a_high_rate_anneals_before_stopping_and_the_best_check_is_kept():
    model = Pair()
    scores = iter([0.5, 0.8, 0.7, 0.7, 0.7, 0.75, 0.9, 0.6])
    positions = [0.0]
    stats = train(model, lambda epoch: [0] * 10, squared_loss(model, target=1e6),
                  Schedule(learning_rate=0.01, epochs=10, patience=3, cooldown_checks=2, fail_if_stuck=False),
                  on_eval=lambda check: next(scores),
                  on_step=lambda step, loss: positions.append(model.body.item()))
    # patience ran out at check 5 (step 50 of 100, half the peak rate); 20 steps of decay to zero
    # with checks at 60 and 70, where 0.9 is the best and kept
    assert stats.steps == 70 and stats.planned_steps == 70 and stats.checks == [0.5, 0.8, 0.7, 0.7, 0.7, 0.75, 0.9]
    assert stats.best_check == 7 and "then 20 steps of decay to zero" in stats.stop_reason
    moves = [b - a for a, b in zip(positions, positions[1:])]
    assert moves[50] > 0.004 and moves[-1] < 0.001  # Adam moves a steady gradient by ~the rate
