"""downloads: encrypted ZIP packages of a study (CF-7)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('download',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('total_size', sa.BigInteger(), nullable=False),
    sa.Column('instances', sa.Integer(), nullable=False),
    sa.Column('withheld', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_download_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_download'))
    )
    with op.batch_alter_table('download', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_download_study_fk'), ['study_fk'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_valid_until'), ['valid_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('download', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_download_valid_until'))
        batch_op.drop_index(batch_op.f('ix_download_study_fk'))

    op.drop_table('download')
