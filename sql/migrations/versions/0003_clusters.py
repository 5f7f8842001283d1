"""clusters: near-duplicate signatures and LSH buckets; source back-off.

Revision ID: 0003
Revises: 0002

Adds `item_signatures` (one MinHash signature per item) and `item_buckets` (one LSH key
per band per item, the primary key doubles as the lookup index), and
`sources.next_fetch_after` for exponential back-off of failing sources. Items already in
the archive are signed and clustered here so that new copies of old stories find them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "item_signatures",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "item_buckets",
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("next_fetch_after", TS))
    # Data step: sign and cluster what is already archived (a no-op on a new archive).
    from pipeline.ingest.dedup import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35), as in 0004. A batch rebuild of `sources` drops
    # the table and renames a copy into its place: SQLite then refuses the rename because
    # the views of 0001/0002 (matches, daily_counts, source_health, alert_log) read
    # `sources`, and with foreign keys on it refuses the drop while items point at it.
    # No view reads next_fetch_after, so nothing has to be set aside; PostgreSQL keeps
    # dependent views across DROP COLUMN of a column they do not read.
    op.drop_column("sources", "next_fetch_after")
    op.drop_table("item_buckets")
    op.drop_table("item_signatures")
