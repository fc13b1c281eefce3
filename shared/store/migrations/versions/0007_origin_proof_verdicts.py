"""Where a finding's code comes from (`findings.origin`), the proof of a confirmed finding (`findings.proof`), and
a task's verdicts (`tasks.verdicts`: works, exploitable, flagged).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="app"))
        batch.add_column(sa.Column("proof", sa.JSON(), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("verdicts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("verdicts")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("proof")
        batch.drop_column("origin")
