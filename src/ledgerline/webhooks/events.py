"""Recording job events: the outbox rows, written in the transaction that changes the job.

`record_job_event` is called by the job lifecycle (`jobs/service.py`, `jobs/retention.py`)
right after the conditional UPDATE that moved a job to a terminal state, in the same
transaction: the event exists if and only if the change committed. It writes one
`webhook_events` row (the job's columns as they are now) and one pending `webhook_deliveries`
row per enabled endpoint of the job's account subscribed to the event; an account with no
such endpoint writes nothing. Nothing is sent here: the consumers' sweep sends
(`webhooks/delivery.py`). Plain SQLAlchemy, no web framework: the consumers import it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledgerline.auth import across_accounts, owned
from ledgerline.db import UTCDateTime, utcnow
from ledgerline.models import Job, WebhookDelivery, WebhookEndpoint, WebhookEvent
from ledgerline.public_ids import allocate

# What a payload keeps of the job: what `GET /jobs/{id}` renders, nothing internal.
_NOT_KEPT = frozenset(
    {"lease_owner", "lease_expires_at", "idempotency_key", "request_hash", "storage_key"}
)


def job_snapshot(job: Job) -> dict[str, Any]:
    """The job's columns as JSON (date-times as ISO text)."""
    snapshot: dict[str, Any] = {}
    for column in Job.__table__.columns:
        if column.key in _NOT_KEPT:
            continue
        value = getattr(job, column.key)
        snapshot[column.key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return snapshot


def job_from_snapshot(snapshot: dict[str, Any]) -> Job:
    """A detached `Job` with the snapshot's values, for the job renderer."""
    values: dict[str, Any] = {}
    for column in Job.__table__.columns:
        if column.key not in snapshot:
            continue
        value = snapshot[column.key]
        if isinstance(column.type, UTCDateTime) and value is not None:
            value = dt.datetime.fromisoformat(value)
        values[column.key] = value
    return Job(**values)


def record_job_event(
    session: Session, job_id: int, event_type: str, now: dt.datetime | None = None
) -> int:
    """Record `event_type` of the job (internal id) for each subscribed endpoint; how many
    deliveries it queued."""
    # The job's consumer and the sweeps hold it by id: the account is the job's own.
    job = session.execute(
        across_accounts(select(Job).where(Job.id == job_id)).execution_options(
            populate_existing=True
        )
    ).scalar_one()
    endpoints = [
        endpoint
        for endpoint in session.execute(
            select(WebhookEndpoint)
            .where(owned(WebhookEndpoint, job.account_id), WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        ).scalars()
        if event_type in endpoint.events
    ]
    if not endpoints:
        return 0
    when = now if now is not None else utcnow()
    event = WebhookEvent(
        account_id=job.account_id,
        message_id=f"msg_{uuid.uuid4().hex}",
        type=event_type,
        job_id=job.id,
        payload=job_snapshot(job),
        created_at=when,
    )
    session.add(event)
    session.flush()
    first = allocate(session, job.account_id, WebhookDelivery, len(endpoints))
    for offset, endpoint in enumerate(endpoints):
        session.add(
            WebhookDelivery(
                public_id=first + offset,
                account_id=job.account_id,
                endpoint_id=endpoint.id,
                event_id=event.id,
                state="pending",
                attempt_count=0,
                round_attempts=0,
                next_attempt_at=when,
                created_at=when,
                updated_at=when,
            )
        )
    session.flush()
    return len(endpoints)
