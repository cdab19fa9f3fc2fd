"""How a failed run's error reads."""

from celery.exceptions import SoftTimeLimitExceeded

from app.errors import InvalidSpec
from app.services.runs import _describe


def test_errors_read_as_words():
    assert (
        _describe(InvalidSpec("3 task(s) fit on no device"))
        == "invalid spec: 3 task(s) fit on no device"
    )
    assert _describe(SoftTimeLimitExceeded()) == "soft time limit exceeded"
    assert (
        _describe(ZeroDivisionError("division by zero")) == "zero division error: division by zero"
    )
    assert _describe(MemoryError()) == "memory error"
