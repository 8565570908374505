"""annotation documents: each user's viewer annotations and key images per study (VW-5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotation_document',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('key_images', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_annotation_document_institution_fk_institution')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_annotation_document_study_fk_study')),
    sa.ForeignKeyConstraint(['user_fk'], ['app_user.id'], name=op.f('fk_annotation_document_user_fk_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation_document'))
    )
    with op.batch_alter_table('annotation_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_document_user_fk'), ['user_fk'], unique=False)
        batch_op.create_index('uq_annotation_document_study_user', ['study_fk', 'user_fk'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('annotation_document', schema=None) as batch_op:
        batch_op.drop_index('uq_annotation_document_study_user')
        batch_op.drop_index(batch_op.f('ix_annotation_document_user_fk'))

    op.drop_table('annotation_document')
