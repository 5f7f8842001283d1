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
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("next_fetch_after")
    op.drop_table("item_buckets")
    op.drop_table("item_signatures")
