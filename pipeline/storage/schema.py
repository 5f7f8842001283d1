"""Table definitions. Alembic migrations in `sql/migrations` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("lang", sa.String(8)),
    sa.Column("country", sa.String(64)),
    sa.Column("tags", JSONType),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("cursor", sa.Text),
    sa.Column("last_fetch_at", TS),
    sa.Column("last_success_at", TS),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("canonical_url", sa.Text, nullable=False, unique=True),
    sa.Column("guid", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("lang", sa.String(8)),
    sa.Column("published_at", TS),
    sa.Column("fetched_at", TS, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("cluster_id", sa.Integer, index=True),
)

classifications = sa.Table(
    "classifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("scores", JSONType, nullable=False),
    sa.Column("evidence", JSONType),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("is_match", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("item_id", "model_version", name="uq_classification_item_model"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("slack_ts", sa.String(64)),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", TS),
    sa.UniqueConstraint("item_id", "channel", name="uq_alert_item_channel"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_name", sa.String(200), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
)
