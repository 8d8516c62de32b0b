"""composition, templates, CAP gateway (issue 3)

Per-channel content, CAP msgType/scope/references, scheduling and expiry on
campaigns; language fallback and SMS maximum per authority; opt-in and hard
bounces on contact points; message templates; CAP gateway keys.

Columns are only added (never a table rebuild), so SQLite keeps its rows and
its R*Tree triggers untouched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('cap_gateway_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=128), nullable=False),
    sa.Column('area', sa.Text(), nullable=True),
    sa.Column('webhook_url', sa.String(length=2000), nullable=True),
    sa.Column('webhook_secret', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('revoked_at', UTC, nullable=True),
    sa.Column('last_used_at', UTC, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cap_gateway_key')),
    sa.UniqueConstraint('key_prefix', name=op.f('uq_cap_gateway_key_key_prefix'))
    )
    op.create_table('message_template',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channels', sa.String(length=64), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('area', sa.Text(), nullable=True),
    sa.Column('area_nis', sa.String(length=5), nullable=True),
    sa.Column('cap_params', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_message_template_authority_id_authority')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_template')),
    sa.UniqueConstraint('authority_id', 'name', name=op.f('uq_message_template_authority_id_name'))
    )
    op.create_index(op.f('ix_message_template_authority_id'), 'message_template',
                    ['authority_id'], unique=False)

    op.add_column('authority', sa.Column('language_fallback', sa.String(length=32), nullable=True))
    op.add_column('authority', sa.Column('sms_max_segments', sa.SmallInteger(), nullable=True))

    op.add_column('campaign', sa.Column('content', sa.JSON(), server_default='{}', nullable=False))
    op.add_column('campaign', sa.Column('msg_type', sa.String(length=16), server_default='Alert', nullable=False))
    op.add_column('campaign', sa.Column('scope', sa.String(length=16), server_default='Public', nullable=False))
    op.add_column('campaign', sa.Column('references_id', sa.String(length=32), nullable=True))
    op.add_column('campaign', sa.Column('cap_references', sa.Text(), nullable=True))
    op.add_column('campaign', sa.Column('response_type', sa.String(length=32), nullable=True))
    op.add_column('campaign', sa.Column('template_id', sa.String(length=32), nullable=True))
    op.add_column('campaign', sa.Column('scheduled_for', UTC, nullable=True))
    op.add_column('campaign', sa.Column('expires_at', UTC, nullable=True))
    op.add_column('campaign', sa.Column('voice_caller', sa.String(length=32), nullable=True))
    op.add_column('campaign', sa.Column('imported_from', sa.JSON(), nullable=True))
    op.create_index(op.f('ix_campaign_references_id'), 'campaign', ['references_id'], unique=False)
    op.create_index(op.f('ix_campaign_scheduled_for'), 'campaign', ['scheduled_for'], unique=False)
    op.create_index('ix_campaign_feed', 'campaign', ['environment', 'launched_at', 'id', 'scope', 'msg_type', 'expires_at', 'references_id'], unique=False)

    op.add_column('contact_point', sa.Column('info_opt_in', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('contact_point', sa.Column('invalid_at', UTC, nullable=True))
    op.add_column('contact_point', sa.Column('invalid_reason', sa.String(length=300), nullable=True))


def downgrade() -> None:
    for column in ('invalid_reason', 'invalid_at', 'info_opt_in'):
        op.drop_column('contact_point', column)
    op.drop_index('ix_campaign_feed', table_name='campaign')
    op.drop_index(op.f('ix_campaign_scheduled_for'), table_name='campaign')
    op.drop_index(op.f('ix_campaign_references_id'), table_name='campaign')
    for column in ('imported_from', 'voice_caller', 'expires_at', 'scheduled_for', 'template_id', 'response_type',
                   'cap_references', 'references_id', 'scope', 'msg_type', 'content'):
        op.drop_column('campaign', column)
    for column in ('sms_max_segments', 'language_fallback'):
        op.drop_column('authority', column)
    op.drop_index(op.f('ix_message_template_authority_id'), table_name='message_template')
    op.drop_table('message_template')
    op.drop_table('cap_gateway_key')
