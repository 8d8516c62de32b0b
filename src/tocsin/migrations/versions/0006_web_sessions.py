"""web sessions, login attempts, TOTP, invitations (issue 8.4)

Server-side web sessions (revocable), login attempts counted in the database
(rate limiting across web processes), TOTP and e-mail columns on users, and
single-use invitations. Tables and columns are only added.

Follows 0005 (the audit chain).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('password_changed_at', UTC, nullable=True))
        batch.add_column(sa.Column('disabled_at', UTC, nullable=True))
    op.create_table('web_session',
    sa.Column('id', BIGID, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('last_seen_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('idle_timeout_s', sa.Integer(), nullable=False),
    sa.Column('revoked_at', UTC, nullable=True),
    sa.Column('pending', sa.String(length=16), nullable=True),
    sa.Column('second_factor', sa.Boolean(), nullable=False),
    sa.Column('csrf_secret', sa.String(length=64), nullable=False),
    sa.Column('totp_enrol_secret', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_web_session_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_web_session_token_hash'))
    )
    op.create_index(op.f('ix_web_session_user_id'), 'web_session', ['user_id'], unique=False)
    op.create_table('login_attempt',
    sa.Column('id', BIGID, nullable=False),
    sa.Column('at', UTC, nullable=False),
    sa.Column('username', sa.String(length=120), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    op.create_index(op.f('ix_login_attempt_at'), 'login_attempt', ['at'], unique=False)
    op.create_index(op.f('ix_login_attempt_username'), 'login_attempt', ['username'], unique=False)
    op.create_index(op.f('ix_login_attempt_client'), 'login_attempt', ['client'], unique=False)
    op.create_table('user_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('invited_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_user_invitation_authority_id_authority')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_invitation_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_invitation')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_invitation_token_hash'))
    )
    op.create_index(op.f('ix_user_invitation_authority_id'), 'user_invitation', ['authority_id'], unique=False)


def downgrade() -> None:
    op.drop_table('user_invitation')
    op.drop_table('login_attempt')
    op.drop_table('web_session')
    with op.batch_alter_table('app_user') as batch:
        for name in ('disabled_at', 'password_changed_at', 'totp_last_step', 'totp_secret',
                     'email'):
            batch.drop_column(name)
