"""A tool run that reused a stored run with the same inputs (`tool_runs.reused_from`: the task it came from) and
how many of its files were not analyzed again (`tool_runs.files_reused`).

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tool_runs") as batch:
        batch.add_column(sa.Column("reused_from", sa.String(32), nullable=True))
        batch.add_column(sa.Column("files_reused", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("tool_runs") as batch:
        batch.drop_column("files_reused")
        batch.drop_column("reused_from")
