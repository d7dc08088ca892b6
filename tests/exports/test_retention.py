"""The retention sweep on both databases: expired files deleted, jobs marked expired, once."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from ledgerline.accounts import create_account
from ledgerline.db import transaction
from ledgerline.exports.storage import LocalStorage
from ledgerline.jobs.retention import sweep_expired, sweep_partials
from ledgerline.models import Job
from ledgerline.public_ids import allocate
from tests.conftest import Backend


def make_account(backend: Backend) -> int:
    with transaction(backend.database_url, writes=True) as session:
        return create_account(session, f"retention-{uuid.uuid4().hex[:8]}", "GBP", "UTC").id


def make_job(
    backend: Backend,
    storage: LocalStorage,
    account_id: int,
    *,
    status: str,
    expires_at: dt.datetime | None,
    with_file: bool,
) -> tuple[int, str]:
    with transaction(backend.database_url, writes=True) as session:
        job = Job(
            account_id=account_id,
            public_id=allocate(session, account_id, Job),
            report="invoice_line_items",
            format="csv",
            params={},
            status=status,
            expires_at=expires_at,
        )
        session.add(job)
        session.flush()
        # The layout the export task uses: <account>/<job>/<attempt>-<file name>.
        key = f"{account_id}/{job.id}/{uuid.uuid4().hex[:12]}-invoice_line_items-{job.id}.csv"
        job.storage_key = key
        if with_file:
            with storage.writer(key) as out:
                out.write(f"job {job.id}\r\n".encode())
        return job.id, key


def statuses(backend: Backend, job_ids: list[int]) -> dict[int, str]:
    with transaction(backend.database_url, writes=False) as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all()
        return {job_id: status for job_id, status in rows}


def sweep_time() -> dt.datetime:
    """The `now` the tests sweep at: ten minutes ahead of the clock.

    Jobs a test makes "expired" expire in those ten minutes, so a sweeper running in the
    background (the jobs tests' consumer, at the real time) never takes them from the test,
    and other tests' succeeded jobs (retention of at least an hour) are not due at it.
    """
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)


def due_everywhere(backend: Backend, now: dt.datetime) -> int:
    """Succeeded jobs past expiry in the whole database (other tests' included)."""
    with transaction(backend.database_url, writes=False) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.status == "succeeded", Job.expires_at <= now)
            )
            or 0
        )


def test_sweep_deletes_expired_files_and_marks_their_jobs(backend: Backend, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "exports")
    account_id = make_account(backend)
    now = sweep_time()
    hour = dt.timedelta(hours=1)
    minutes = dt.timedelta(minutes=5)
    expired = [
        make_job(
            backend,
            storage,
            account_id,
            status="succeeded",
            expires_at=now - minutes,
            with_file=True,
        ),
        make_job(backend, storage, account_id, status="succeeded", expires_at=now, with_file=True),
        # The file is already gone (a sweep that deleted it did not commit): still fine.
        make_job(
            backend,
            storage,
            account_id,
            status="succeeded",
            expires_at=now - minutes,
            with_file=False,
        ),
    ]
    kept = [
        make_job(
            backend, storage, account_id, status="succeeded", expires_at=now + hour, with_file=True
        ),
        make_job(
            backend, storage, account_id, status="failed", expires_at=now - hour, with_file=False
        ),
        make_job(backend, storage, account_id, status="queued", expires_at=None, with_file=False),
        make_job(
            backend, storage, account_id, status="running", expires_at=now - hour, with_file=True
        ),
    ]
    expected = due_everywhere(backend, now)
    assert expected >= len(expired)

    with transaction(backend.database_url, writes=True) as session:
        swept = sweep_expired(session, storage, now)
    assert swept == expected

    all_ids = [job_id for job_id, _ in expired + kept]
    after = statuses(backend, all_ids)
    assert {after[job_id] for job_id, _ in expired} == {"expired"}
    assert [after[job_id] for job_id, _ in kept] == ["succeeded", "failed", "queued", "running"]
    for _, key in expired:
        assert storage.size(key) is None
    assert storage.size(kept[0][1]) is not None
    assert storage.size(kept[3][1]) is not None

    # A second sweep finds nothing more to do.
    with transaction(backend.database_url, writes=True) as session:
        assert sweep_expired(session, storage, now) == 0


def test_a_sweep_that_does_not_commit_changes_nothing_in_the_database(
    backend: Backend, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "exports")
    account_id = make_account(backend)
    now = sweep_time()
    job_id, _key = make_job(
        backend,
        storage,
        account_id,
        status="succeeded",
        expires_at=now - dt.timedelta(minutes=1),
        with_file=True,
    )
    due = due_everywhere(backend, now)
    assert due >= 1
    try:
        with transaction(backend.database_url, writes=True) as session:
            assert sweep_expired(session, storage, now) == due
            raise RuntimeError("commit never happens")
    except RuntimeError:
        pass
    assert statuses(backend, [job_id]) == {job_id: "succeeded"}
    # The next sweep finishes the work: the missing file is not an error.
    with transaction(backend.database_url, writes=True) as session:
        assert sweep_expired(session, storage, now) == due
    assert statuses(backend, [job_id]) == {job_id: "expired"}


def test_concurrent_sweeps_expire_each_job_once(backend: Backend, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "exports")
    account_id = make_account(backend)
    now = sweep_time()
    jobs = [
        make_job(
            backend,
            storage,
            account_id,
            status="succeeded",
            expires_at=now - dt.timedelta(minutes=5),
            with_file=True,
        )
        for _ in range(30)
    ]
    expected = due_everywhere(backend, now)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def sweep() -> None:
        try:
            start.wait()
            with transaction(backend.database_url, writes=True) as session:
                counts.append(sweep_expired(session, storage, now, limit=7))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(20):  # rounds of four sweepers at once, until one finds nothing left
        round_start = len(counts)
        threads = [threading.Thread(target=sweep) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        start.reset()
        if errors or not any(counts[round_start:]):
            break
    assert errors == []
    assert sum(counts) == expected
    assert set(statuses(backend, [job_id for job_id, _ in jobs]).values()) == {"expired"}
    assert all(storage.size(key) is None for _, key in jobs)


def test_partial_files_are_kept_only_for_the_attempt_holding_the_lease(
    backend: Backend, tmp_path: Path
) -> None:
    """`sweep_partials`: a file being written by the job's lease holder stays, however long
    since it was written to; every other attempt's goes (its job was re-queued, failed, was
    canceled or taken over), as does any attempt's once the job is no longer running."""
    storage = LocalStorage(tmp_path / "exports")
    account_id = make_account(backend)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    def job(status: str, owner: str | None) -> int:
        with transaction(backend.database_url, writes=True) as session:
            made = Job(
                account_id=account_id,
                public_id=allocate(session, account_id, Job),
                report="invoice_line_items",
                format="csv",
                params={},
                status=status,
                lease_owner=owner,
                lease_expires_at=far if owner else None,
            )
            session.add(made)
            session.flush()
            return made.id

    running = job("running", "host:1:aaaaaaaaaaaa")
    requeued = job("queued", None)
    failed = job("failed", None)
    keys = {
        "live": f"{account_id}/{running}/aaaaaaaaaaaa-invoice_line_items-{running}.csv",
        "taken over": f"{account_id}/{running}/bbbbbbbbbbbb-invoice_line_items-{running}.csv",
        "re-queued": f"{account_id}/{requeued}/cccccccccccc-invoice_line_items-{requeued}.csv",
        "failed": f"{account_id}/{failed}/dddddddddddd-invoice_line_items-{failed}.csv",
        "not an export's": "elsewhere/notes.csv",
    }
    for key in keys.values():
        # The temporary file a writer of `key` fills (named as LocalStorage names it),
        # untouched for a day: age is no reason to keep or remove one.
        temp = storage.root / Path(key).parent / f".{Path(key).name}.0123456789abcdef.part"
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"half a file")
        os.utime(temp, (time.time() - 86_400, time.time() - 86_400))
    with transaction(backend.database_url, writes=False) as session:
        assert sweep_partials(session, storage) == 3
    left = sorted(partial.key for partial in storage.partial_writes())
    assert left == sorted([keys["live"], keys["not an export's"]])
    # The emptied job directories are pruned, as `delete` prunes them.
    assert not (storage.root / str(account_id) / str(requeued)).exists()
