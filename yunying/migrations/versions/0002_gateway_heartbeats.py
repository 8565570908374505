"""gateway heartbeats: the latest status of each edge gateway (GW-13)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gateway_status',
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('institution', sa.String(length=64), nullable=True),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('queue_depth', sa.Integer(), nullable=False),
    sa.Column('oldest_age_s', sa.Float(), nullable=False),
    sa.Column('disk_used_bytes', sa.BigInteger(), nullable=False),
    sa.Column('disk_budget_bytes', sa.BigInteger(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('gateway_id', name=op.f('pk_gateway_status'))
    )
    with op.batch_alter_table('gateway_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_status_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('gateway_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_status_received_at'))

    op.drop_table('gateway_status')
