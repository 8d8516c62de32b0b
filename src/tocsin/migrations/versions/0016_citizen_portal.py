"""citizen portal (issue 10 points 1, 2, 3, 5)

New tables only (docs/decisions/0006, 0019): ``citizen_session``, ``portal_code``,
``portal_send``, ``subscriber_profile``, ``subscriber_consent``, ``address_detail``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        'citizen_session',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('pending_kind', sa.String(length=16), nullable=True),
        sa.Column('pending_value', sa.String(length=320), nullable=True),
        sa.Column('verified_at', UTCDateTime(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_citizen_session_subscriber_id', 'citizen_session', ['subscriber_id'])
    op.create_index('ix_citizen_session_expires_at', 'citizen_session', ['expires_at'])
    op.create_table(
        'portal_code',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('address_hash', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('tries', sa.SmallInteger(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_portal_code_session_hash', 'portal_code', ['session_hash'])
    op.create_index('ix_portal_code_address_hash', 'portal_code', ['address_hash'])
    op.create_table(
        'portal_send',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('number_hash', sa.String(length=64), nullable=False),
        sa.Column('ip_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('sent', sa.Boolean(), nullable=False),
        sa.Column('refused', sa.String(length=32), nullable=True),
        sa.Column('entered', sa.Boolean(), nullable=False),
        sa.Column('nonce', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('nonce'),
    )
    for col in ('at', 'number_hash', 'ip_hash', 'prefix'):
        op.create_index(f'ix_portal_send_{col}', 'portal_send', [col])
    op.create_table(
        'subscriber_profile',
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('channels', sa.String(length=40), nullable=False),
        sa.Column('accessibility', sa.String(length=16), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id'),
    )
    op.create_table(
        'subscriber_consent',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('given', sa.Boolean(), nullable=False),
        sa.Column('text_version', sa.String(length=40), nullable=False),
        sa.Column('language', sa.String(length=2), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_subscriber_consent_subscriber_id', 'subscriber_consent',
                    ['subscriber_id'])
    op.create_table(
        'address_detail',
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('municipality', sa.String(length=100), nullable=False),
        sa.Column('street', sa.String(length=150), nullable=False),
        sa.Column('number', sa.String(length=20), nullable=False),
        sa.Column('geocoded', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['address_id'], ['address.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('address_id'),
    )


def downgrade() -> None:
    for name in ('address_detail', 'subscriber_consent', 'subscriber_profile', 'portal_send',
                 'portal_code', 'citizen_session'):
        op.drop_table(name)
