"""Who holds an unanswered `Idempotency-Key` claim (`idempotency_keys.holder`, a random id per attempt): the
request that claimed it or took it over renews, releases and answers it only while it is still its own, so a
request whose lease lapsed (a stalled renewal) cannot delete or overwrite the claim a retry took over.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("holder", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("holder")
