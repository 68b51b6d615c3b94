"""lb metrics: one sample per load balancer per sampling interval

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``lb_metrics``: the sampler's averages over ``[interval_start, interval_start +
interval_seconds)`` (``interval_start`` in UTC epoch seconds): CPU % and memory % of the
LB's data-plane processes, ingress and egress in bits per second. Rows go with their LB
(ON DELETE CASCADE) and are pruned after 30 days; ``POST .../metrics`` reads them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lb_metrics",
        sa.Column("lb_id", sa.String(length=36), nullable=False),
        sa.Column("interval_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("cpu_util", sa.Float(), nullable=True),
        sa.Column("memory_util", sa.Float(), nullable=True),
        sa.Column("network_bps_ingress", sa.Float(), nullable=True),
        sa.Column("network_bps_egress", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lb_id"],
            ["load_balancers.id"],
            name=op.f("fk_lb_metrics_lb_id_load_balancers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lb_id", "interval_start", name=op.f("pk_lb_metrics")),
    )
    with op.batch_alter_table("lb_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_lb_metrics_interval_start", ["interval_start"], unique=False)


def downgrade() -> None:
    op.drop_table("lb_metrics")
