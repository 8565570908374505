"""shares, share sessions, feedback tickets (issue 6)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 08:17:51.148950
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('share',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('creator_identity', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('history', sa.Boolean(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('open_count', sa.Integer(), nullable=False),
    sa.Column('last_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_opens', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_share_token_hash'))
    )
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_creator_identity'), ['creator_identity'], unique=False)

    op.create_table('share_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('share_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['share_fk'], ['share.id'], name=op.f('fk_share_session_share_fk_share')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_session'))
    )
    with op.batch_alter_table('share_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_session_share_fk'), ['share_fk'], unique=False)

    op.create_table('feedback_ticket',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('who', sa.String(length=100), nullable=False),
    sa.Column('via', sa.String(length=100), nullable=False),
    sa.Column('page', sa.String(length=500), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('screenshot_key', sa.String(length=200), nullable=True),
    sa.Column('screenshot_type', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_feedback_ticket_institution_fk_institution')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_feedback_ticket_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_ticket'))
    )
    with op.batch_alter_table('feedback_ticket', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_ticket_institution_state', ['institution_fk', 'state', 'created_at'], unique=False)

    op.create_table('share_study',
    sa.Column('share_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('chosen', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['share_fk'], ['share.id'], name=op.f('fk_share_study_share_fk_share')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_share_study_study_fk_study')),
    sa.PrimaryKeyConstraint('share_fk', 'study_fk', name=op.f('pk_share_study'))
    )
    with op.batch_alter_table('share_study', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_study_study_fk'), ['study_fk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('share_study', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_study_study_fk'))

    op.drop_table('share_study')
    with op.batch_alter_table('feedback_ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_ticket_institution_state')

    op.drop_table('feedback_ticket')
    with op.batch_alter_table('share_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_session_share_fk'))

    op.drop_table('share_session')
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_creator_identity'))

    op.drop_table('share')
