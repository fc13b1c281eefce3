"""Who holds an unanswered `Idempotency-Key` claim, and until when (`idempotency_keys.holder`, a random id per
attempt, and `held_until`, the lease its request pushes on while it runs): a claim whose gateway died is known within
seconds, not after a fixed minute, and a request whose lease lapsed cannot delete or overwrite the claim a retry took
over.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("holder", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("holder")
        batch.drop_column("held_until")
