"""Short ids, as git takes them: every id the API and the CLI show (`c885b016`) names a run,
study or retraining job wherever its full id does, as long as exactly one of those the caller may
see starts with it. Resolved here, against the database and the caller's tenant, so that every
client gets the same answer whatever pages of a listing it has seen."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from app.db.models import Run, Study, TrainingJob
from app.db.scope import ids_starting_with
from app.db.session import session_scope
from app.errors import AmbiguousIdPrefix, IdPrefixNotFound, Invalid
from app.tenancy import Tenant

#: The fewest hex digits a prefix may have (65,536 values), as git's shortest abbreviation.
MIN_PREFIX_DIGITS = 4
#: How many of the matching ids an ambiguous prefix's error names.
SHOWN_MATCHES = 5
#: A full id or a prefix of one: MIN_PREFIX_DIGITS to 32 hex digits, a `-` allowed after any of
#: them (as in the uuid's text; where it stands is not checked: only the digits count). The API
#: states it in its schema (api/deps.py) and `resolve_id` checks it, with a message that says so.
ID_PATTERN = rf"^(?:[0-9a-fA-F]-?){{{MIN_PREFIX_DIGITS},32}}$"


@dataclass(frozen=True)
class IdKind:
    """What an id names: its table, how errors call it, and the path parameter it comes in."""

    model: type[Run | Study | TrainingJob]
    noun: str
    nouns: str
    parameter: str


RUN = IdKind(Run, "run", "runs", "run_id")
STUDY = IdKind(Study, "study", "studies", "study_id")
RETRAINING_JOB = IdKind(TrainingJob, "retraining job", "retraining jobs", "job_id")


def resolve_id(tenant: Tenant, kind: IdKind, text: str) -> uuid.UUID:
    """The id of the one `kind` row `tenant` may see whose id starts with `text` (a full id is
    taken as it is: whether it exists is its reader's question). Invalid if `text` is no id or
    prefix of one, or has fewer than MIN_PREFIX_DIGITS digits; IdPrefixNotFound if no row
    starts with it; AmbiguousIdPrefix if several do."""
    location = ("path", kind.parameter)
    if not re.fullmatch(ID_PATTERN, text):  # fullmatch: `$` would let a final newline by
        raise Invalid(
            f"{text!r} is not a {kind.noun} id: give the id or its first "
            f"{MIN_PREFIX_DIGITS} or more hex digits",
            location,
        )
    digits = text.replace("-", "").lower()
    if len(digits) == 32:
        return uuid.UUID(digits)
    with session_scope() as session:
        ids, count = ids_starting_with(session, kind.model, digits, tenant, SHOWN_MATCHES)
    if count == 0:
        raise IdPrefixNotFound(kind.noun, text)
    if count > 1:
        raise AmbiguousIdPrefix(kind.nouns, text, count, [str(i) for i in ids], location)
    return ids[0]
