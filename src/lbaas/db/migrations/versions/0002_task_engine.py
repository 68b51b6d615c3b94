"""task engine: back-off, set-aside tasks, internal tasks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

- ``run_after``: a NEW task is not claimed before this time (retry back-off).
- ``set_aside_at``: the task could not even be failed cleanly; it reads ERROR on
  the wire, its queue moved on, and ``lbaas tasks list --stuck`` lists it.
- ``internal``: a task lbaas queued for itself (e.g. applying a seed PATCH's
  ``logging`` to the data plane); the tasks API never shows it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_after", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("set_aside_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("internal")
        batch_op.drop_column("set_aside_at")
        batch_op.drop_column("run_after")
