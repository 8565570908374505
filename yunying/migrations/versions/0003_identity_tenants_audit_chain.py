"""identity, tenants, grants, sessions, peers, tamper-evident audit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:06:01.924365
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('algorithm', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('institution',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_institution')),
    sa.UniqueConstraint('code', name=op.f('uq_institution_code'))
    )
    op.create_table('rate_counter',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('window_start', sa.Float(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counter'))
    )
    op.create_table('department',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_department_institution_fk_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department'))
    )
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_department_institution_fk'), ['institution_fk'], unique=False)
        batch_op.create_index('uq_department_code', ['institution_fk', 'code'], unique=True)

    op.create_table('dicom_peer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ae_title', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=64), nullable=False),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('roles', sa.String(length=300), nullable=False, server_default=''),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_fk'], ['institution.id'], name=op.f('fk_dicom_peer_institution_fk_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dicom_peer'))
    )
    with op.batch_alter_table('dicom_peer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_peer_institution_fk'), ['institution_fk'], unique=False)
        batch_op.create_index('uq_dicom_peer_ae_host', ['ae_title', 'host'], unique=True)

    op.create_table('access_grant',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('study_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('grantee_user_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('grantee_institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('granted_by_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_fk'], ['app_user.id'], name=op.f('fk_access_grant_granted_by_fk_app_user')),
    sa.ForeignKeyConstraint(['grantee_institution_fk'], ['institution.id'], name=op.f('fk_access_grant_grantee_institution_fk_institution')),
    sa.ForeignKeyConstraint(['grantee_user_fk'], ['app_user.id'], name=op.f('fk_access_grant_grantee_user_fk_app_user')),
    sa.ForeignKeyConstraint(['source_institution_fk'], ['institution.id'], name=op.f('fk_access_grant_source_institution_fk_institution')),
    sa.ForeignKeyConstraint(['study_fk'], ['study.id'], name=op.f('fk_access_grant_study_fk_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_grant'))
    )
    with op.batch_alter_table('access_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_grant_grantee_institution_fk'), ['grantee_institution_fk'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_grant_grantee_user_fk'), ['grantee_user_fk'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_grant_source_institution_fk'), ['source_institution_fk'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_grant_study_fk'), ['study_fk'], unique=False)

    op.create_table('user_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('second_factor_done', sa.Boolean(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['user_fk'], ['app_user.id'], name=op.f('fk_user_session_user_fk_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_fk'), ['user_fk'], unique=False)

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.String(length=300), nullable=True))

    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roles', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('department_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('display_name', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('totp_secret_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sessions_valid_after', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('external_issuer', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('external_subject', sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f('ix_app_user_institution_fk'), ['institution_fk'], unique=False)
        batch_op.create_index('uq_app_user_external', ['external_issuer', 'external_subject'], unique=True)
        batch_op.create_foreign_key(batch_op.f('fk_app_user_department_fk_department'), 'department', ['department_fk'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_app_user_institution_fk_institution'), 'institution', ['institution_fk'], ['id'])


    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('actor_institution', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('actor_role', sa.String(length=100), nullable=False, server_default=''))
        batch_op.create_index('ix_audit_event_actor', ['actor', 'at'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_seq'), ['seq'])

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('id_card_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('id_card_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.drop_index(batch_op.f('uq_patient_identity'))
        batch_op.create_index('uq_patient_identity', ['institution_fk', 'patient_id', 'issuer'], unique=True)
        batch_op.create_index(batch_op.f('ix_patient_id_card_hash'), ['id_card_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_patient_institution_fk_institution'), 'institution', ['institution_fk'], ['id'])

    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_fk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_study_institution_fk'), ['institution_fk'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_study_institution_fk_institution'), 'institution', ['institution_fk'], ['id'])

    # Existing data belongs to one default institution; existing users keep their powers as roles.
    op.execute(sa.text("INSERT INTO institution (code, name, level, kind, region, disabled, created_at) "
                       "VALUES ('default', 'Default institution', '', '', '', false, CURRENT_TIMESTAMP)"))
    default_id = "(SELECT id FROM institution WHERE code = 'default')"
    op.execute(sa.text(f"UPDATE patient SET institution_fk = {default_id}"))
    op.execute(sa.text(f"UPDATE study SET institution_fk = {default_id}"))
    op.execute(sa.text(f"UPDATE app_user SET institution_fk = {default_id}, roles = CASE WHEN role = 'admin' "
                       "THEN 'platform-admin,hospital-admin,radiologist,auditor' ELSE role END"))
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('role')
    _audit_chain_upgrade()


# The audit chain (yunying.auth.audit): its head row exists from the start (the first append picks the
# hash algorithm and chains entries written before this revision), and chained entries are append-only
# for the application's database user. A DBA can still drop the triggers: that is what the hash chain
# and `yunying audit verify` catch. On SQLite a later batch migration of audit_event (table copy) drops
# these triggers: such a migration must create them again.
_APPEND_ONLY = "audit_event is append-only (yunying.auth.audit)"


def _audit_chain_upgrade() -> None:
    op.execute(sa.text("INSERT INTO audit_chain_head (id, last_seq, last_hash, algorithm) VALUES (1, 0, '', '')"))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text("CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                           f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"))
        op.execute(sa.text("CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
                           "FOR EACH ROW WHEN (OLD.seq IS NOT NULL) EXECUTE FUNCTION audit_event_append_only()"))
        op.execute(sa.text("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
                           "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"))
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(sa.text(f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                               f"WHEN OLD.seq IS NOT NULL BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"))


def _audit_chain_downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event"))
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS audit_event_append_only()"))
    else:
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_event_no_update"))
        op.execute(sa.text("DROP TRIGGER IF EXISTS audit_event_no_delete"))


def downgrade() -> None:
    _audit_chain_downgrade()
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_study_institution_fk_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_study_institution_fk'))
        batch_op.drop_column('institution_fk')

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_patient_institution_fk_institution'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_patient_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_patient_id_card_hash'))
        batch_op.drop_index('uq_patient_identity')
        batch_op.create_index(batch_op.f('uq_patient_identity'), ['patient_id', 'issuer'], unique=1)
        batch_op.drop_column('phone_hash')
        batch_op.drop_column('phone_enc')
        batch_op.drop_column('id_card_hash')
        batch_op.drop_column('id_card_enc')
        batch_op.drop_column('institution_fk')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_seq'), type_='unique')
        batch_op.drop_index('ix_audit_event_actor')
        batch_op.drop_column('actor_role')
        batch_op.drop_column('actor_institution')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')

    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.VARCHAR(length=32), nullable=False, server_default='admin'))
        batch_op.drop_constraint(batch_op.f('fk_app_user_institution_fk_institution'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_app_user_department_fk_department'), type_='foreignkey')
        batch_op.drop_index('uq_app_user_external')
        batch_op.drop_index(batch_op.f('ix_app_user_institution_fk'))
        batch_op.drop_column('external_subject')
        batch_op.drop_column('external_issuer')
        batch_op.drop_column('sessions_valid_after')
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('totp_enabled')
        batch_op.drop_column('totp_secret_enc')
        batch_op.drop_column('display_name')
        batch_op.drop_column('department_fk')
        batch_op.drop_column('institution_fk')
        batch_op.drop_column('roles')

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('scopes')

    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_fk'))

    op.drop_table('user_session')
    with op.batch_alter_table('access_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_grant_study_fk'))
        batch_op.drop_index(batch_op.f('ix_access_grant_source_institution_fk'))
        batch_op.drop_index(batch_op.f('ix_access_grant_grantee_user_fk'))
        batch_op.drop_index(batch_op.f('ix_access_grant_grantee_institution_fk'))

    op.drop_table('access_grant')
    with op.batch_alter_table('dicom_peer', schema=None) as batch_op:
        batch_op.drop_index('uq_dicom_peer_ae_host')
        batch_op.drop_index(batch_op.f('ix_dicom_peer_institution_fk'))

    op.drop_table('dicom_peer')
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_index('uq_department_code')
        batch_op.drop_index(batch_op.f('ix_department_institution_fk'))

    op.drop_table('department')
    op.drop_table('rate_counter')
    op.drop_table('institution')
    op.drop_table('audit_chain_head')
