"""reports: one row per report, immutable versions (issue 6)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:56:18.168085
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('accession_number', sa.String(length=64), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_report_institution_fk_institution')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_report_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report'))
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index('ix_report_institution_accession', ['institution_fk', 'accession_number'], unique=False)
        batch_op.create_index('ix_report_institution_patient', ['institution_fk', 'patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_study_fk'), ['study_fk'], unique=False)
        batch_op.create_index('ix_report_study_uid', ['study_uid'], unique=False)

    op.create_table('report_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('report_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('impression', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('verifier', sa.String(length=200), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('pdf_sop_uid', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['report_fk'], ['report.id'], name=op.f('fk_report_version_report_fk_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_version'))
    )
    with op.batch_alter_table('report_version', schema=None) as batch_op:
        batch_op.create_index('uq_report_version', ['report_fk', 'version'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('report_version', schema=None) as batch_op:
        batch_op.drop_index('uq_report_version')

    op.drop_table('report_version')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index('ix_report_study_uid')
        batch_op.drop_index(batch_op.f('ix_report_study_fk'))
        batch_op.drop_index('ix_report_institution_patient')
        batch_op.drop_index('ix_report_institution_accession')

    op.drop_table('report')
