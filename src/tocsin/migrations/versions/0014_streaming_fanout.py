"""streaming fan-out, per-campaign claims, shared rate limits (issue 13)

Adds ``campaign.fanout_cursor`` / ``fanout_count`` / ``fanout_owner`` /
``fanout_lease_until`` (a resumable fan-out), the partial index
``ix_delivery_queued_campaign`` (campaign, channel, id of queued rows) for the
per-campaign claim, and the ``provider_rate`` table (token buckets shared by
every worker). Only adds (decision 0006); see decision 0014.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign') as batch:
        batch.add_column(sa.Column('fanout_cursor', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('fanout_count', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('fanout_owner', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('fanout_lease_until', sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_index('ix_delivery_queued_campaign', 'delivery', ['campaign_id', 'channel', 'id'],
                    postgresql_where=sa.text("state = 'queued'"),
                    sqlite_where=sa.text("state = 'queued'"))
    op.create_table(
        'provider_rate',
        sa.Column('account', sa.String(length=200), primary_key=True),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('provider_rate')
    op.drop_index('ix_delivery_queued_campaign', table_name='delivery')
    with op.batch_alter_table('campaign') as batch:
        for name in ('fanout_lease_until', 'fanout_owner', 'fanout_count', 'fanout_cursor'):
            batch.drop_column(name)
