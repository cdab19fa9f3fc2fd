"""The dev stack's secrets: random on the first start, kept in `<data_dir>/credentials.json`
(mode 0600) so the next start finds its servers' passwords and the same API key. A secret added
since the file was written (the metrics token) is generated and added on the next start."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class DevCredentials:
    postgres_password: str
    redis_password: str
    api_key: str
    flower_basic_auth: str
    # The bearer token of the API's /metrics (HMS_METRICS_TOKEN): without one it answers 404.
    metrics_token: str

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DevCredentials:
        path = data_dir / "credentials.json"
        kept = json.loads(path.read_text()) if path.exists() else {}
        new = _generate()
        credentials = cls(**{f.name: kept.get(f.name) or new[f.name] for f in fields(cls)})
        if asdict(credentials) != kept:
            data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(json.dumps(asdict(credentials), indent=2))
        return credentials


def _generate() -> dict[str, str]:
    return {
        "postgres_password": secrets.token_urlsafe(18),
        "redis_password": secrets.token_urlsafe(18),
        "api_key": f"dev-{secrets.token_urlsafe(18)}",
        "flower_basic_auth": f"admin:{secrets.token_urlsafe(12)}",
        "metrics_token": secrets.token_urlsafe(18),
    }
