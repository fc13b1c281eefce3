"""Each service's whole outcome is kept in its service run until the task's folder is written (it was a file under
`<results>/.staging/<task_id>/<service>.json`, written and fsynced for every service event).

Outcomes staged as files by an earlier version for tasks that have not ended are copied into their rows, so a task
in flight across the upgrade keeps them. The files are left where they are (a failed upgrade must not lose them);
once this revision is applied, `.staging` is no longer read and may be removed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEGACY_STAGING = ".staging"
FINISHED = ("completed", "partial", "failed", "cancelled")


def _legacy_staging() -> Path:
    # The results folder of the services' configuration (shared/operations/config.py reads the same variable).
    return Path(os.environ.get("ASSAY_RESULTS_DIR", "results")) / LEGACY_STAGING


def upgrade() -> None:
    with op.batch_alter_table("service_runs") as batch:
        batch.add_column(sa.Column("staged_result", sa.LargeBinary(), nullable=True))
    staging = _legacy_staging()
    if not staging.is_dir():
        return
    connection = op.get_bind()
    copy = sa.text(
        "UPDATE service_runs SET staged_result = :data WHERE task_id = :task_id AND service = :service"
        " AND task_id IN (SELECT task_id FROM tasks WHERE status NOT IN :finished)"
    ).bindparams(sa.bindparam("finished", expanding=True), sa.bindparam("data", type_=sa.LargeBinary()))
    for task_folder in sorted(staging.iterdir()):
        for staged in sorted(task_folder.glob("*.json")) if task_folder.is_dir() else []:
            parameters = {"task_id": task_folder.name, "service": staged.stem, "finished": list(FINISHED)}
            connection.execute(copy, {**parameters, "data": staged.read_bytes()})


def downgrade() -> None:
    with op.batch_alter_table("service_runs") as batch:
        batch.drop_column("staged_result")
