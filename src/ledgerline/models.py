"""The tables. Every row of customer data carries `account_id` (see `auth.scoped`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledgerline.db import Base, BigIntId, UTCDateTime, utcnow

# The id the API shows for the TeamUp-shaped records: numbered 1, 2, 3… per account and
# table in creation order (`public_ids.allocate`), unique per (account_id, public_id), so no
# id reveals another account's volume. Internal keys (`id`) and foreign keys stay as they are.
PublicNumber = BigInteger

InvoiceStatus = Literal[
    "draft",
    "upcoming",
    "open",
    "pending",
    "pending_offline",
    "paid",
    "failed",
    "retrying",
    "retry_failed",
    "voided",
    "skipped",
]
INVOICE_STATUSES: tuple[str, ...] = get_args(InvoiceStatus)

LineItemType = Literal[
    "pack_membership",
    "prepaid_plan_membership",
    "recurring_plan_membership",
    "membership_purchase",
    "event_registration",
    "course",
    "course_session",
    "store_order",
    "flat_fee",
    "service_fee",
    "membership_penalty_fee",
    "joining_fee",
    "gift_card",
]
LINE_ITEM_TYPES: tuple[str, ...] = get_args(LineItemType)

# TeamUp's documented `billed_item.object` values (its report rows, docs/invoices.md).
BilledItemObject = Literal[
    "event",
    "event_registration",
    "appointment_slot",
    "room_rental_slot",
    "course",
    "course_session",
    "customer_membership",
    "customer_membership_setup",
    "purchase_fee",
    "store_order_item",
]
BILLED_ITEM_OBJECTS: tuple[str, ...] = get_args(BilledItemObject)

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "canceled", "expired")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountCounter(Base):
    """The last public id handed out per account and table (`public_ids.allocate`). One row
    per (account, table), so writers of one account and table take turns on its row lock
    and nobody else waits."""

    __tablename__ = "account_counters"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)


class AccountRowCount(Base):
    """How many invoices and line items an account has (`row_counts`): the reports' exact
    unfiltered `total` in one row read. Moved by `n = n + :k` in every transaction that
    inserts or deletes such rows, so it is exact in every snapshot (docs/decisions.md)."""

    __tablename__ = "account_row_counts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_count: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """A credential. The secret is kept only as a SHA-256 hash (it is 256 random bits)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When a request last authenticated with it, to within auth.LAST_USED_GRANULARITY.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Venue(Base):
    __tablename__ = "venues"
    __table_args__ = (
        Index(None, "account_id", "id"),
        Index(None, "account_id", "public_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index(None, "account_id", "id"),
        Index(None, "account_id", "public_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("account_id", "number"),
        Index(None, "account_id", "id"),
        Index(None, "account_id", "public_id", unique=True),
        # Covers a status filter's line count: SUM(line_count) reads only matching invoices.
        Index(None, "account_id", "status", "line_count"),
        Index(None, "account_id", "due_date"),
        Index(None, "account_id", "paid_at"),
        Index(None, "account_id", "updated_at"),
        Index(None, "account_id", "confirmed_at"),
        Index(None, "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    is_credit_note: Mapped[bool] = mapped_column(Boolean, default=False)
    discount_code_name: Mapped[str | None] = mapped_column(String(200))
    discount_code_code: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # How many line items the invoice has, moved in the transactions that add or delete
    # them (`row_counts`): a filter on invoices counts its lines by summing this.
    line_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


RevenueRecognitionMethod = Literal["STRAIGHT_LINE", "USAGE", "MILESTONE", "POINT_IN_TIME"]
REVENUE_RECOGNITION_METHODS: tuple[str, ...] = get_args(RevenueRecognitionMethod)
RevenueClassification = Literal["PREPAYMENT", "EARNED", "BURNDOWN"]
REVENUE_CLASSIFICATIONS: tuple[str, ...] = get_args(RevenueClassification)


class TaxCategory(Base):
    """A named tax category of one account (Sequence's `{id, name}`); `public_id` is shown."""

    __tablename__ = "tax_categories"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LineItemGroup(Base):
    """A Sequence line-item group. `id` orders by creation (the keyset); `public_id` is shown."""

    __tablename__ = "line_item_groups"
    __table_args__ = (Index(None, "invoice_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sequence's optional group attributes (migration 0003); NULL when not given.
    tax_category_id: Mapped[int | None] = mapped_column(ForeignKey("tax_categories.id"))
    revenue_recognition_method: Mapped[str | None] = mapped_column(String(20))
    revenue_classification: Mapped[str | None] = mapped_column(String(20))
    service_period_start: Mapped[dt.date | None] = mapped_column(Date)
    service_period_end: Mapped[dt.date | None] = mapped_column(Date)


class LineItem(Base):
    """One invoice line; money in minor units of `currency` (the invoice's, copied here so
    reports can group by currency without a join)."""

    __tablename__ = "line_items"
    __table_args__ = (
        Index(None, "account_id", "id"),
        # The report's `id`: default order, tie-breaker and `id_gt` (migration 0005). On
        # PostgreSQL it carries the internal id, so a deep page's id walk stays index-only.
        Index(None, "account_id", "public_id", unique=True, postgresql_include=["id"]),
        Index(None, "account_id", "type"),
        Index(None, "invoice_id", "id"),
        Index(None, "group_id"),
        # Covering indexes for the grouped report (migration 0002, docs/performance.md).
        Index(None, "account_id", "type", "currency", "amount"),
        Index(None, "account_id", "currency", "amount"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("line_item_groups.id", ondelete="SET NULL")
    )
    type: Mapped[str] = mapped_column(String(40))
    billed_item_object: Mapped[str | None] = mapped_column(String(60))
    billed_item_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    quantity_micros: Mapped[int | None] = mapped_column(BigInteger)
    unit_price_micros: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    tax_rate_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """A background export. This row, not the queue, is the truth `GET /jobs/{id}` reads."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "account_id", "id"),
        Index(None, "account_id", "public_id", unique=True),
        Index(None, "status", "lease_expires_at"),
        UniqueConstraint("account_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(40), default="report_export")
    report: Mapped[str] = mapped_column(String(60))
    format: Mapped[str] = mapped_column(String(10))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    file_name: Mapped[str | None] = mapped_column(String(255))
    storage_key: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # Per currency: rows and each money column's sum in the file (`exports.totals`).
    totals: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)


class ConsoleSession(Base):
    """A signed-in browser of the console. Only the SHA-256 of the session id (256 random
    bits, in the cookie) is kept, so a copy of the database signs nobody in."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated, as api_keys.scopes
    # The token signed in with (None for a one-time link): revoking it ends the session too.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set by sign-out: the row stays (an audit of who was signed in), the cookie is dead.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ConsoleLink(Base):
    """A one-time sign-in link from `ledgerline console-link`; only its token's hash is kept."""

    __tablename__ = "console_links"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# ---- webhooks (issue 14; docs/webhooks.md) ---------------------------------------------------

WebhookEventType = Literal["job.succeeded", "job.failed", "job.canceled", "job.expired"]
WEBHOOK_EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)
# pending (due at next_attempt_at) → sending (claimed under a lease) → succeeded | failed
# (its retries used up); a failed or succeeded delivery is pending again after a redelivery.
WEBHOOK_DELIVERY_STATES = ("pending", "sending", "succeeded", "failed")


class WebhookEndpoint(Base):
    """A URL of the account's that job events are sent to, signed with its own secret. The
    secret is kept encrypted (AES-GCM under a key derived from the server secret), since the
    sender needs it to sign; the API shows it only at creation and rotation."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "account_id", "public_id", unique=True),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    """One job event, recorded in the transaction that changed the job's state, with the job
    as it was then (`payload`: its columns, rendered as `GET /jobs/{id}` at each send)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The `webhook-id` header: random, so it tells nothing of other accounts.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: the outbox row the consumers claim and send."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "account_id", "public_id", unique=True),
        Index(None, "endpoint_id", "id"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts since the delivery was (re)armed: its place in the back-off schedule.
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookAttempt(Base):
    """One HTTP request of a delivery and what came of it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool] = mapped_column(Boolean)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CADENCES = ("daily", "weekly", "monthly", "cron")


class ExportSchedule(Base):
    """An export that runs itself (docs/schedules.md): a report, its parameters as given (a
    timeframe is resolved at each run), a cadence at a local time in a zone. `next_run_at`
    is the claim: a runner takes a due slot by moving it on, compare-and-set, in the
    transaction that inserts the job; NULL while paused."""

    __tablename__ = "export_schedules"
    __table_args__ = (
        Index(None, "account_id", "public_id", unique=True),
        Index(None, "next_run_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    public_id: Mapped[int] = mapped_column(PublicNumber)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    report: Mapped[str] = mapped_column(String(60))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(10))
    cadence: Mapped[str] = mapped_column(String(10))
    time_of_day: Mapped[str | None] = mapped_column(String(8))  # "HH:MM", local; not for cron
    weekday: Mapped[int | None] = mapped_column(Integer)  # 0 = Monday (weekly)
    day_of_month: Mapped[int | None] = mapped_column(Integer)  # 1-31 (monthly)
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the last slot run
    last_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExportScheduleRun(Base):
    """One run of a schedule: the slot it ran for and the job it created. Unique per
    (schedule, slot), so a slot can never have two jobs, whatever the runners do."""

    __tablename__ = "export_schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "slot_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("export_schedules.id"))
    slot_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
