"""The database tables. Times are Unix seconds (float), the same in SQLite and PostgreSQL.

The schema is created and changed only by the Alembic migrations in `bot/migrations`; keep
these models and the latest migration in step.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class CatalogSource(SQLModel, table=True):
    """One catalog file (or remote catalog) as last loaded."""

    __tablename__ = "catalog_source"
    key: str = Field(primary_key=True)
    digest: str
    problems: str = "[]"
    loaded_at: float


class CatalogEntity(SQLModel, table=True):
    """One entity, its document kept as loaded (JSON) and the references it makes."""

    __tablename__ = "catalog_entity"
    key: str = Field(primary_key=True)
    source_key: str = Field(index=True)
    kind: str = Field(index=True)
    line: int = 0
    body: str
    refs: str = "[]"


class HandledDelivery(SQLModel, table=True):
    """A Slack delivery already handled, so a retry of it does nothing twice."""

    __tablename__ = "handled_delivery"
    key: str = Field(primary_key=True)
    received_at: float = Field(index=True)


class PageRecord(SQLModel, table=True):
    """A page sent to on-call; one per entity per dedup window."""

    __tablename__ = "page_record"
    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(unique=True)
    entity_key: str = Field(index=True)
    paged_by: str
    method: str
    reference: str = ""
    created_at: float = Field(index=True)


class SlackIdentity(SQLModel, table=True):
    """A Slack user's profile e-mail, cached (the catalog User is found from it on each ask)."""

    __tablename__ = "slack_identity"
    slack_user_id: str = Field(primary_key=True)
    email: str = ""
    fetched_at: float


class AuditEntry(SQLModel, table=True):
    """Who changed what, when, and how it went."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    actor: str
    action: str = Field(index=True)
    target: str
    outcome: str
    detail: str = ""


class Environment(SQLModel, table=True):
    """A self-service environment: one Kubernetes namespace, named as the namespace is.
    `active_name` is the name while the environment lives (unique), empty once it has ended."""

    __tablename__ = "environment"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    active_name: str | None = Field(default=None, unique=True)
    request_key: str = Field(unique=True)
    service_ref: str
    owner_ref: str = Field(index=True)
    purpose: str
    size: str
    requester: str = Field(index=True)
    status: str = Field(index=True)
    created_at: float
    expires_at: float = Field(index=True)
    warned_at: float | None = None
    ended_at: float | None = None
    detail: str = ""


class Lease(SQLModel, table=True):
    """Who may run a singleton job (the reaper) until when, across replicas."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True)
    holder: str
    expires_at: float


class KnowledgeDocument(SQLModel, table=True):
    """One searchable piece of knowledge: a runbook or docs section, an FAQ, an accepted answer.
    The full-text index beside it is the database's own (FTS5 on SQLite, tsvector on PostgreSQL)."""

    __tablename__ = "kb_document"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(index=True)
    entity_ref: str = Field(default="", index=True)
    title: str
    section: str = ""
    url: str = ""
    body: str
    version: str = ""
    updated_at: float


class Question(SQLModel, table=True):
    """A question asked in office hours (or to the bot): one per Slack message."""

    __tablename__ = "oh_question"
    __table_args__ = (UniqueConstraint("channel", "ts", name="oh_question_message"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True)
    ts: str
    user: str
    text: str
    asked_at: float = Field(index=True)
    status: str = Field(index=True)
    answered_at: float | None = None
    answered_by: str = ""
    answer_key: str = ""


class ScaffolderRun(SQLModel, table=True):
    """One run of a software template. `idempotency_key` makes a second submit of the same form
    find this run; `template` is the template as it was when the run started (JSON), so a resume
    runs the same steps."""

    __tablename__ = "scaffolder_run"
    id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    values_digest: str = Field(index=True)
    template_ref: str = Field(index=True)
    template: str
    requester: str = Field(index=True)
    owner: str = Field(default="", index=True)
    state: str = Field(index=True)
    run_values: str = "{}"
    output_links: str = "[]"
    output_text: str = ""
    error: str = ""
    submitted_at: float = Field(index=True)
    started_at: float | None = None
    finished_at: float | None = None
    slack_channel: str = ""
    slack_ts: str = ""


class ScaffolderStep(SQLModel, table=True):
    """One step of a run: its resolved input (secrets masked), output, checkpoints and log."""

    __tablename__ = "scaffolder_step"
    run_id: str = Field(primary_key=True, foreign_key="scaffolder_run.id")
    position: int = Field(primary_key=True)
    step_id: str
    name: str
    action: str
    state: str
    resolved_input: str = "{}"
    output: str = "{}"
    checkpoints: str = "{}"
    links: str = "[]"
    log: str = ""
    error: str = ""
    started_at: float | None = None
    finished_at: float | None = None


class ScaffolderClaim(SQLModel, table=True):
    """A repository a running template will create: one run at a time per name."""

    __tablename__ = "scaffolder_claim"
    name: str = Field(primary_key=True)
    run_id: str = Field(index=True)


class FeedbackResponse(SQLModel, table=True):
    """One developer-NPS answer: a 0–10 score and a comment, from `/platform feedback` or a survey.
    `response_key` (the modal's view id) makes a double submit one answer."""

    __tablename__ = "feedback_response"
    id: int | None = Field(default=None, primary_key=True)
    response_key: str = Field(unique=True)
    user_id: str = Field(index=True)
    score: int
    comment: str = ""
    source: str = "command"
    submitted_at: float = Field(index=True)


class DeliverySource(SQLModel, table=True):
    """What the DORA collector last read from one outside source: a repository (`github`, its
    lower-case slug) or a PagerDuty service (`pagerduty`, its id). `read_at`: the last read that
    worked (the stored events are complete up to then); `error`: the last attempt's failure, if it failed."""

    __tablename__ = "delivery_source"
    system: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    read_at: float | None = None
    source: str = ""
    """For a repository: where its deliveries come from, `deployments` or `workflow runs` ("" : none found)."""
    error: str = ""
    tried_at: float = 0.0


class DeliveryEvent(SQLModel, table=True):
    """A successful change to production: a deployment that reached `success` (key `deployment:ID`)
    or, for a repository without deployments, the first successful run of a commit (`commit:SHA`).
    `changes_read`: the commits it shipped are in `delivery_change`."""

    __tablename__ = "delivery_event"
    __table_args__ = (Index("ix_delivery_event_slug_at", "slug", "at"),)
    slug: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    sha: str
    at: float
    source: str
    changes_read: bool = False


class DeliveryChange(SQLModel, table=True):
    """A commit a delivery shipped, for the lead time for changes."""

    __tablename__ = "delivery_change"
    __table_args__ = (Index("ix_delivery_change_slug_delivered_at", "slug", "delivered_at"),)
    slug: str = Field(primary_key=True)
    delivery_key: str = Field(primary_key=True)
    sha: str = Field(primary_key=True)
    committed_at: float
    delivered_at: float


class WorkflowRunEvent(SQLModel, table=True):
    """A GitHub Actions workflow run on a repository's default branch."""

    __tablename__ = "workflow_run_event"
    __table_args__ = (Index("ix_workflow_run_event_slug_created_at", "slug", "created_at"),)
    slug: str = Field(primary_key=True)
    run_id: int = Field(primary_key=True, sa_type=BigInteger)  # GitHub's run ids pass 2³¹
    sha: str
    status: str
    conclusion: str
    created_at: float


class IncidentEvent(SQLModel, table=True):
    """A PagerDuty incident of a service named by a Component's `pagerduty.com/service-id`."""

    __tablename__ = "incident_event"
    __table_args__ = (Index("ix_incident_event_service_id_created_at", "service_id", "created_at"),)
    id: str = Field(primary_key=True)
    service_id: str
    created_at: float
    resolved_at: float | None = None


class UsageDay(SQLModel, table=True):
    """How often a Slack user used a command (or button, modal...) on a UTC day: adoption and the
    active users a survey goes to."""

    __tablename__ = "usage_day"
    day: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    action: str = Field(primary_key=True)
    count: int = 0
