"""Initial archive: sources, items, classifications, alerts, quarantine and the matches view.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

MATCHES_VIEW = """
CREATE VIEW matches AS
SELECT i.id AS item_id,
       i.canonical_url AS url,
       i.title,
       i.lang,
       i.published_at,
       c.labels,
       c.score,
       c.model_version,
       a.alerted_at,
       s.name AS source,
       s.country,
       i.cluster_id,
       c.evidence
FROM items i
JOIN classifications c ON c.item_id = i.id
JOIN sources s ON s.id = i.source_id
LEFT JOIN (
    SELECT item_id, MIN(sent_at) AS alerted_at
    FROM alerts WHERE status = 'sent' GROUP BY item_id
) a ON a.item_id = i.id
WHERE c.is_match
  AND c.id = (SELECT MAX(c2.id) FROM classifications c2 WHERE c2.item_id = i.id)
"""


def upgrade() -> None:
    op.create_table(
        "sources",
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
    op.create_table(
        "items",
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
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("cluster_id", sa.Integer),
    )
    op.create_index("ix_items_content_hash", "items", ["content_hash"])
    op.create_index("ix_items_cluster_id", "items", ["cluster_id"])
    op.create_index("ix_items_published_at", "items", ["published_at"])
    op.create_table(
        "classifications",
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
    op.create_index("ix_classifications_item_id", "classifications", ["item_id"])
    op.create_table(
        "alerts",
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
    op.create_index("ix_alerts_status", "alerts", ["status"])
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.execute(MATCHES_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS matches")
    for table in ("quarantine", "alerts", "classifications", "items", "sources"):
        op.drop_table(table)
