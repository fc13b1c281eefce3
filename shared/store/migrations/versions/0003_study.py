"""Studies: the issue group of each finding; the batch and the app's size (source lines) of each task; the summary
of each service run's findings (what the model comparison reads).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("issue_group", sa.String(length=32), nullable=True))
    # Findings written before groups existed are issues of their own.
    op.execute("UPDATE findings SET issue_group = substr(fingerprint, 1, 32) WHERE issue_group IS NULL")
    with op.batch_alter_table("findings") as batch:
        batch.alter_column("issue_group", existing_type=sa.String(length=32), nullable=False)
        batch.create_index("ix_findings_task_issue_group", ["task_id", "issue_group"], unique=False)
    with op.batch_alter_table("service_runs") as batch:
        batch.add_column(sa.Column("finding_summary", sa.JSON(), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(length=18), nullable=True))
        batch.add_column(sa.Column("source_lines", sa.Integer(), nullable=True))
        batch.create_index("ix_tasks_batch_id", ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_runs") as batch:
        batch.drop_column("finding_summary")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_batch_id")
        batch.drop_column("source_lines")
        batch.drop_column("batch_id")
    with op.batch_alter_table("findings") as batch:
        batch.drop_index("ix_findings_task_issue_group")
        batch.drop_column("issue_group")
