"""What `resolve_id` refuses before it asks the database, and the full ids it takes as they are
(prefixes against the database: tests/integration/test_cli.py)."""

import uuid

import pytest

from app.errors import Invalid
from app.services.short_ids import RUN, STUDY, resolve_id
from app.tenancy import Tenant

TEAM = Tenant("team-a")


@pytest.mark.parametrize("text", ["c88", "c8-8", "c885x", "c885\n", "-c885", "", "0" * 33])
def test_what_is_no_id_or_prefix_is_refused_naming_the_path_parameter(text):
    with pytest.raises(Invalid) as refused:
        resolve_id(TEAM, STUDY, text)
    assert refused.value.location == ("path", "study_id")
    assert str(refused.value) == (
        f"{text!r} is not a study id: give the id or its first 4 or more hex digits"
    )


def test_a_full_id_is_taken_as_it_is_with_or_without_dashes_in_any_case():
    run_id = uuid.UUID("c885b016-0000-4000-8000-000000000001")
    assert resolve_id(TEAM, RUN, str(run_id)) == run_id
    assert resolve_id(TEAM, RUN, run_id.hex.upper()) == run_id
