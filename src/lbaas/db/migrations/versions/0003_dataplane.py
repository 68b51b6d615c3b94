"""data plane: applied snapshots, observed health and counters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataplane_state",
        sa.Column("lb_id", sa.String(length=36), nullable=False),
        sa.Column("applied", sa.JSON(), nullable=True),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.Column("running", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.DateTime(), nullable=True),
        sa.Column("counters", sa.JSON(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lb_id"],
            ["load_balancers.id"],
            name=op.f("fk_dataplane_state_lb_id_load_balancers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lb_id", name=op.f("pk_dataplane_state")),
    )
    op.create_table(
        "member_health",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("lb_id", sa.String(length=36), nullable=False),
        sa.Column("health", sa.String(length=10), nullable=False),
        sa.Column("check_status", sa.String(length=16), nullable=True),
        sa.Column("check_code", sa.Integer(), nullable=True),
        sa.Column("check_desc", sa.String(length=255), nullable=True),
        sa.Column("check_duration_ms", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_health_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lb_id"],
            ["load_balancers.id"],
            name=op.f("fk_member_health_lb_id_load_balancers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_health")),
    )
    with op.batch_alter_table("member_health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_health_lb_id"), ["lb_id"], unique=False)


def downgrade() -> None:
    op.drop_table("member_health")
    op.drop_table("dataplane_state")
