"""The whole system on five hosts of a real (namespaced) network: PostgreSQL, Valkey, the API
with Flower, and two worker hosts, each reaching the others by address (issue 23, item 1)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import psutil
import psycopg2
import pytest
import redis
from sqlalchemy import make_url

from api.deps import SESSION_COOKIE
from app.devstack.multihost import BEAT_HOST, HOSTS, WORKER_HOSTS, MultiHostStack
from tests.processes import wait_until

#: How often (s) beat sends the recovery sweep here (60 by default): a scheduled job to count.
SWEEP_INTERVAL_S = 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHostStack]:
    root = tmp_path_factory.mktemp("multihost")
    env = {"HMS_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S)}
    with MultiHostStack(root, prefix="hmsmh", subnet="10.77.1.0/24", env=env) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(stack: MultiHostStack) -> Iterator[httpx.Client]:
    """The API from this machine's root namespace, over the bridge, with the stack's admin key."""
    headers = {"X-API-Key": stack.api_key}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as client:
        yield client


def _listening(stack: MultiHostStack, host: str) -> set[str]:
    """The local addresses of the TCP sockets listening in the host's namespace."""
    table = stack.network.run(host, ["ss", "-Hltn"], capture_output=True, text=True, check=True)
    return {line.split()[3].rsplit(":", 1)[0] for line in table.stdout.splitlines()}


def test_every_process_reaches_the_others_by_address_and_nothing_uses_loopback(stack):
    subnet = ipaddress.ip_network(stack.network.subnet)
    for service in stack.services.values():
        urls = [v for v in service.env.values() if "://" in v]
        assert len(urls) >= 3, service.env.keys()  # the database, the broker, the API
        for url in urls:
            host = urlsplit(url).hostname
            assert host is not None and ipaddress.ip_address(host) in subnet, (service.name, url)
        joined = " ".join([*service.env.values(), *service.argv])
        assert not re.search(r"127\.0\.0\.1|localhost|::1", joined), service.name
    for host in HOSTS:
        assert _listening(stack, host) <= {stack.network.ip(host)}, host
    # Something does listen where it should: the servers, the API and Flower.
    assert _listening(stack, "db") == {stack.network.ip("db")}
    assert _listening(stack, "broker") == {stack.network.ip("broker")}
    assert _listening(stack, "api") == {stack.network.ip("api")}


def test_the_servers_ask_every_host_for_their_password(stack):
    """PostgreSQL's pg_hba admits the subnet with scram-sha-256, not `trust`; Valkey wants its
    password. Asked from this machine's end of the bridge, an address of the subnet."""
    wrong = make_url(stack.database_url).set(password="wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(wrong.render_as_string(hide_password=False).replace("+psycopg2", ""))
    anonymous = redis.Redis(host=stack.network.ip("broker"), port=urlsplit(stack.redis_url).port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()


#: 2 cells x 4 repetitions of small runs (5,000 tasks, one policy: well under a second each).
STUDY = {
    "name": "two hosts",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 5000},
        "cluster": {"cpus": 4, "gpus": 1},
        "policies": ["greedy"],
    },
    "grid": {"workload.load": [0.5, 0.9]},
    "repetitions": 4,
}


def test_the_runs_of_a_study_spread_over_both_worker_hosts(stack, api):
    study = api.post("/api/v1/studies", json=STUDY)
    assert study.status_code == 202, study.text
    study_id = study.json()["id"]

    def ended() -> bool:
        return api.get(f"/api/v1/studies/{study_id}").json()["status"] != "running"

    wait_until(ended, 120, "the study to end", every_s=0.5)
    assert api.get(f"/api/v1/studies/{study_id}").json()["status"] == "succeeded"
    runs = api.get("/api/v1/runs", params={"study_id": study_id, "limit": 100}).json()["items"]
    assert len(runs) == 8 and {run["status"] for run in runs} == {"succeeded"}
    assert {run["worker"] for run in runs} == {"celery@worker1", "celery@worker2"}


def test_flower_and_the_queues_page_see_both_workers(stack, api):
    workers = {stack.worker_hostname(host) for host in WORKER_HOSTS}
    flower = httpx.get(f"{stack.flower_url}/api/workers", params={"refresh": 1}, timeout=30)
    assert flower.status_code == 401  # Flower's basic auth (FLOWER_BASIC_AUTH) guards its API

    def flower_sees_both() -> bool:
        answer = httpx.get(
            f"{stack.flower_url}/api/workers",
            params={"refresh": 1},
            auth=stack.flower_auth,
            timeout=30,
        )
        return answer.status_code == 200 and workers <= set(answer.json())

    wait_until(flower_sees_both, 60, "Flower to list both workers", every_s=1)
    with httpx.Client(cookies={SESSION_COOKIE: stack.api_key}, timeout=30) as browser:
        page = browser.get(f"{stack.api_url}/queues")  # the dashboard's login: the key as cookie
    assert page.status_code == 200
    assert all(name in page.text for name in workers)


def _beat_hosts(stack: MultiHostStack) -> list[str]:
    """The hosts with a `celery beat` process in their namespace."""
    found = []
    for host in HOSTS:
        listed = subprocess.run(
            ["ip", "netns", "pids", stack.network.namespace(host)],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        for pid in map(int, listed):
            with contextlib.suppress(psutil.NoSuchProcess):
                if "beat" in psutil.Process(pid).cmdline():
                    found.append(host)
    return found


def test_beat_runs_on_one_host_and_each_scheduled_sweep_runs_exactly_once(stack):
    """Beat sends the recovery sweep every second here (SWEEP_INTERVAL_S); both worker hosts
    consume its queue. Every sweep beat sent runs, once: had a second host run beat too, the
    workers would run about twice as many sweeps as this beat sent."""
    assert _beat_hosts(stack) == [BEAT_HOST]
    wait_until(lambda: _sends(stack) >= 3, 60, "beat to send the sweep three times")
    sent_before = _sends(stack)
    wait_until(lambda: len(_sweeps_run(stack)) >= sent_before, 60, "the sweeps sent to run")
    ran = _sweeps_run(stack)
    sent = _sends(stack)  # read after: beat logs a send before it sends, so each run is counted
    assert len(set(ran)) == len(ran) <= sent


def _sends(stack: MultiHostStack) -> int:
    return stack.log("beat").count("Sending due task sweep-stuck-work")


def _sweeps_run(stack: MultiHostStack) -> list[str]:
    """The task ids of the sweeps the two workers ran to the end."""
    ids = []
    for host in WORKER_HOSTS:
        ids += re.findall(r"Task hms\.sweep\[([0-9a-f-]+)\] succeeded", stack.log(host))
    return ids
