import pytest

from api.web.templating import MISSING, seconds


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2.5, "2.5 s"),
        (1.9699e-05, "19.7 µs"),
        (0.0011106, "1.111 ms"),
        (3e-9, "3 ns"),
        (1e-3, "1 ms"),
        (None, MISSING),
        (float("nan"), MISSING),
    ],
)
def test_a_duration_shows_in_the_unit_that_keeps_it_between_1_and_1000(value, shown):
    assert seconds(value) == shown
