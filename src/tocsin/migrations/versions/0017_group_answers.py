"""group alerts with answers (issue 10 point 8)

Adds the tables ``answer_call`` (a campaign's answer options, letter and quota),
``inbound_message`` (SMS received over SMPP or the provider's webhook),
``campaign_answer`` (one answer per person and campaign) and ``quota_person`` (the
ordered list of a quota call). Only adds (docs/decisions/0006, 0020).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        'answer_call',
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('authority_id', sa.String(length=8), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('letter', sa.String(length=1), nullable=False),
        sa.Column('quota', sa.Integer(), nullable=True),
        sa.Column('timeout_s', sa.Integer(), nullable=False),
        sa.Column('escalate_s', sa.Integer(), nullable=False),
        sa.Column('accept_option', sa.SmallInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('thanks', sa.JSON(), nullable=False),
        sa.Column('follow_up_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('closed_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id'),
    )
    op.create_index('ix_answer_call_authority_id', 'answer_call', ['authority_id'])
    op.create_index('ix_answer_call_status', 'answer_call', ['status'])
    op.create_table(
        'inbound_message',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('via', sa.String(length=16), nullable=False),
        sa.Column('sender', sa.String(length=32), nullable=False),
        sa.Column('recipient', sa.String(length=32), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('provider_id', sa.String(length=100), nullable=True),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.Column('campaign_id', sa.String(length=32), nullable=True),
        sa.Column('option', sa.SmallInteger(), nullable=True),
        sa.Column('reason', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_inbound_message_sender', 'inbound_message', ['sender'])
    op.create_index('ix_inbound_message_campaign_id', 'inbound_message', ['campaign_id'])
    op.create_table(
        'campaign_answer',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('respondent', sa.String(length=320), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('option', sa.SmallInteger(), nullable=False),
        sa.Column('answered_at', UTCDateTime(), nullable=False),
        sa.Column('possible_scanner', sa.Boolean(), server_default=sa.false(),
                  nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'respondent'),
    )
    op.create_index('ix_campaign_answer_campaign_id', 'campaign_answer', ['campaign_id'])
    op.create_table(
        'quota_person',
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=320), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('mobile', sa.String(length=20), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('language', sa.String(length=2), nullable=False),
        sa.Column('channels', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('sent', sa.String(length=64), nullable=False),
        sa.Column('option', sa.SmallInteger(), nullable=True),
        sa.Column('asked_at', UTCDateTime(), nullable=True),
        sa.Column('answered_at', UTCDateTime(), nullable=True),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('thanked_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'key'),
    )


def downgrade() -> None:
    op.drop_table('quota_person')
    op.drop_table('campaign_answer')
    op.drop_table('inbound_message')
    op.drop_table('answer_call')
