"""The dev stack's secrets: random on the first start, kept in `<data_dir>/credentials.json`
(mode 0600) so the next start finds its servers' passwords and the same API key."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class DevCredentials:
    postgres_password: str
    redis_password: str
    api_key: str
    flower_basic_auth: str

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DevCredentials:
        path = data_dir / "credentials.json"
        if path.exists():
            return cls(**json.loads(path.read_text()))
        data_dir.mkdir(parents=True, exist_ok=True)
        credentials = cls(
            postgres_password=secrets.token_urlsafe(18),
            redis_password=secrets.token_urlsafe(18),
            api_key=f"dev-{secrets.token_urlsafe(18)}",
            flower_basic_auth=f"admin:{secrets.token_urlsafe(12)}",
        )
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(credentials), indent=2))
        return credentials
