import pytest

from tasks.training.schedules import learning_rate_schedule


def test_cosine_falls_from_the_rate_to_zero_over_the_training():
    cosine = learning_rate_schedule("cosine", 1e-3, epochs=10, steps_per_epoch=5)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(50)) == pytest.approx(0.0, abs=1e-9)
    assert float(cosine(25)) == pytest.approx(5e-4, rel=1e-4)  # half-way down the cosine


def test_warm_up_rises_linearly_then_the_cosine_falls_over_the_epochs_left():
    schedule = learning_rate_schedule("cosine", 1e-3, epochs=10, steps_per_epoch=5, warmup_epochs=2)
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-12)
    assert float(schedule(5)) == pytest.approx(5e-4, rel=1e-4)  # half-way up the warm-up
    assert float(schedule(10)) == pytest.approx(1e-3, rel=1e-4)  # its top
    assert float(schedule(30)) == pytest.approx(5e-4, rel=1e-4)  # half-way down the 40 steps left
    assert float(schedule(50)) == pytest.approx(0.0, abs=1e-9)


def test_inverse_time_is_the_tutorials_decay_per_step():
    tutorial = learning_rate_schedule("inverse-time", 1e-3, epochs=10, steps_per_epoch=5)
    assert float(tutorial(100)) == pytest.approx(1e-3 / (1 + 1e-4 * 100))
