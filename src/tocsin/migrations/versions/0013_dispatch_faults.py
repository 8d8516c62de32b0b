"""provider message ids per account, submissions counted (issue 13 faults)

Adds the table ``sms_message`` (the SMSC message id of each submitted SMS part,
keyed by provider account and submission, never unique on the id alone: an
SMSC restart or a second account repeats ids), ``delivery_receipt.account``
(which account's bind the receipt came in on), ``delivery_receipt.id_key`` /
``alt_key`` (its id normalised, and read as decimal turned hexadecimal), and the counters
``delivery.submissions`` (submissions the provider accepted) and
``delivery.unconfirmed`` (submissions whose fate is unknown: the worker died or
the connection was lost with the message on the wire). Only adds (0006).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        'sms_message',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('account', sa.String(length=200), nullable=False),
        sa.Column('id_key', sa.String(length=100), nullable=False),
        sa.Column('message_id', sa.String(length=100), nullable=False),
        sa.Column('delivery_id', BigId, nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('stat', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'],
                                name=op.f('fk_sms_message_delivery_id_delivery'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_message')),
    )
    with op.batch_alter_table('sms_message') as batch:
        batch.create_index('ix_sms_message_key', ['id_key', 'account'], unique=False)
        batch.create_index(batch.f('ix_sms_message_delivery_id'), ['delivery_id'], unique=False)
    with op.batch_alter_table('delivery_receipt') as batch:
        batch.add_column(sa.Column('account', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('id_key', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('alt_key', sa.String(length=100), nullable=True))
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('submissions', sa.SmallInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('unconfirmed', sa.SmallInteger(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('unconfirmed')
        batch.drop_column('submissions')
    with op.batch_alter_table('delivery_receipt') as batch:
        batch.drop_column('alt_key')
        batch.drop_column('id_key')
        batch.drop_column('account')
    with op.batch_alter_table('sms_message') as batch:
        batch.drop_index(batch.f('ix_sms_message_delivery_id'))
        batch.drop_index('ix_sms_message_key')
    op.drop_table('sms_message')
