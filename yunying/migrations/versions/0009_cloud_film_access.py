"""cloud film access: tokens, challenges, patient sessions, hides, blocks, notifications, hospital settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 08:18:45.643512
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cloudfilm_setting',
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('outpatient', sa.Boolean(), nullable=False),
    sa.Column('inpatient', sa.Boolean(), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('physical_exam', sa.Boolean(), nullable=False),
    sa.Column('token_days', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('brand_color', sa.String(length=7), nullable=False),
    sa.Column('sms_on_final', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_cloudfilm_setting_institution_fk_institution')),
    sa.PrimaryKeyConstraint('institution_fk', name=op.f('pk_cloudfilm_setting'))
    )
    op.create_table('notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('recipient_masked', sa.String(length=64), nullable=False),
    sa.Column('recipient_enc', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_ref', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_notification_institution_fk_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_institution_fk'), ['institution_fk'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_state'), ['state'], unique=False)

    op.create_table('cloudfilm_token',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_cloudfilm_token_institution_fk_institution')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_cloudfilm_token_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cloudfilm_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_cloudfilm_token_token_hash'))
    )
    with op.batch_alter_table('cloudfilm_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cloudfilm_token_study_fk'), ['study_fk'], unique=False)

    op.create_table('patient_block',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('identity_hash', sa.String(length=64), nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('user_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_patient_block_institution_fk_institution')),
    sa.ForeignKeyConstraint(['user_fk'], ['app_user.id'], name=op.f('fk_patient_block_user_fk_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_block'))
    )
    with op.batch_alter_table('patient_block', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_block_identity_hash'), ['identity_hash'], unique=False)

    op.create_table('patient_hidden',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('identity_hash', sa.String(length=64), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_patient_hidden_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_hidden'))
    )
    with op.batch_alter_table('patient_hidden', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_hidden_study_fk'), ['study_fk'], unique=False)
        batch_op.create_index('uq_patient_hidden', ['identity_hash', 'study_fk'], unique=True)

    op.create_table('cloudfilm_challenge',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['token_fk'], ['cloudfilm_token.id'], name=op.f('fk_cloudfilm_challenge_token_fk_cloudfilm_token')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cloudfilm_challenge'))
    )
    with op.batch_alter_table('cloudfilm_challenge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cloudfilm_challenge_token_fk'), ['token_fk'], unique=False)

    op.create_table('patient_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('identity', sa.String(length=400), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('token_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['token_fk'], ['cloudfilm_token.id'], name=op.f('fk_patient_session_token_fk_cloudfilm_token')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_session'))
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_class', sa.String(length=16), nullable=False, server_default=''))
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.alter_column('patient_class', server_default=None)



def downgrade() -> None:
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_column('patient_class')

    op.drop_table('patient_session')
    with op.batch_alter_table('cloudfilm_challenge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cloudfilm_challenge_token_fk'))

    op.drop_table('cloudfilm_challenge')
    with op.batch_alter_table('patient_hidden', schema=None) as batch_op:
        batch_op.drop_index('uq_patient_hidden')
        batch_op.drop_index(batch_op.f('ix_patient_hidden_study_fk'))

    op.drop_table('patient_hidden')
    with op.batch_alter_table('patient_block', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_block_identity_hash'))

    op.drop_table('patient_block')
    with op.batch_alter_table('cloudfilm_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cloudfilm_token_study_fk'))

    op.drop_table('cloudfilm_token')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_state'))
        batch_op.drop_index(batch_op.f('ix_notification_institution_fk'))

    op.drop_table('notification')
    op.drop_table('cloudfilm_setting')
