"""jobs and film sheets: the background job queue and a study's electronic film (issue 6, CF-1)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('job',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_by', sa.String(length=100), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_state_run_after', ['state', 'run_after'], unique=False)
        batch_op.create_index('ix_job_kind_dedupe_key', ['kind', 'dedupe_key'], unique=False)

    op.create_table('film_sheet',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('study_fk', ID, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('n_sheets', sa.Integer(), nullable=False),
    sa.Column('blob_key', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('pdf_key', sa.String(length=200), nullable=False),
    sa.Column('pdf_size', sa.BigInteger(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('layout', sa.String(length=8), nullable=False),
    sa.Column('window', sa.JSON(), nullable=True),
    sa.Column('images', sa.JSON(), nullable=False),
    sa.Column('header', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_film_sheet_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_film_sheet'))
    )
    with op.batch_alter_table('film_sheet', schema=None) as batch_op:
        batch_op.create_index('uq_film_sheet_study_version_n', ['study_fk', 'version', 'n'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('film_sheet', schema=None) as batch_op:
        batch_op.drop_index('uq_film_sheet_study_version_n')
    op.drop_table('film_sheet')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_kind_dedupe_key')
        batch_op.drop_index('ix_job_state_run_after')
    op.drop_table('job')
