"""address register (issue 10 point 4)

Adds the official address register (BeST-Address): ``address_point``, ``address_street``,
``address_place``, ``address_import`` and ``address_stage``
(docs/decisions/0022-address-register.md), and ``address_detail.box`` /
``address_detail.best_id`` (a citizen's address found in the register). Only adds
(docs/decisions/0006).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def Key(length: int) -> sa.String:  # noqa: N802 - a column type
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _fields() -> list[sa.Column]:
    return [
        sa.Column('best_id', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('nis', sa.String(length=5), nullable=False),
        sa.Column('postcode', sa.String(length=4), nullable=False),
        sa.Column('municipality_nl', sa.String(length=100), nullable=False),
        sa.Column('municipality_fr', sa.String(length=100), nullable=False),
        sa.Column('municipality_de', sa.String(length=100), nullable=False),
        sa.Column('street_nl', sa.String(length=150), nullable=False),
        sa.Column('street_fr', sa.String(length=150), nullable=False),
        sa.Column('street_de', sa.String(length=150), nullable=False),
        sa.Column('street_key', Key(150), nullable=False),
        sa.Column('number', sa.String(length=20), nullable=False),
        sa.Column('number_key', Key(20), nullable=False),
        sa.Column('box', sa.String(length=40), nullable=False),
        sa.Column('box_key', Key(40), nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'address_point',
        *_fields(),
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_address_point_best_id', 'address_point', ['best_id'], unique=True)
    op.create_index('ix_address_point_street', 'address_point',
                    ['nis', 'street_key', 'number_key'])
    op.create_table(
        'address_stage',
        *_fields(),
        sa.Column('run_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('row', sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('run_id', 'row'),
    )
    op.create_index('ix_address_stage_best_id', 'address_stage', ['run_id', 'best_id'])
    op.create_table(
        'address_street',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('nis', sa.String(length=5), nullable=False),
        sa.Column('postcode', sa.String(length=4), nullable=False),
        sa.Column('street_key', Key(150), nullable=False),
        sa.Column('lang', sa.String(length=2), nullable=False),
        sa.Column('name', sa.String(length=150), nullable=False),
        sa.Column('name_key', Key(150), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('nis', 'postcode', 'street_key', 'lang'),
    )
    op.create_index('ix_address_street_name', 'address_street', ['nis', 'name_key'])
    op.create_table(
        'address_place',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('nis', sa.String(length=5), nullable=False),
        sa.Column('postcode', sa.String(length=4), nullable=False),
        sa.Column('lang', sa.String(length=2), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_key', Key(100), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'nis', 'postcode', 'lang'),
    )
    op.create_index('ix_address_place_name', 'address_place', ['name_key'])
    op.create_index('ix_address_place_nis', 'address_place', ['nis'])
    op.create_table(
        'address_import',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('imported', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('unchanged', sa.Integer(), nullable=False),
        sa.Column('retired', sa.Integer(), nullable=False),
        sa.Column('refused', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('address_detail') as batch:
        batch.add_column(sa.Column('box', sa.String(length=40), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('best_id', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('address_detail') as batch:
        batch.drop_column('best_id')
        batch.drop_column('box')
    op.drop_table('address_import')
    op.drop_index('ix_address_place_nis', table_name='address_place')
    op.drop_index('ix_address_place_name', table_name='address_place')
    op.drop_table('address_place')
    op.drop_index('ix_address_street_name', table_name='address_street')
    op.drop_table('address_street')
    op.drop_index('ix_address_stage_best_id', table_name='address_stage')
    op.drop_table('address_stage')
    op.drop_index('ix_address_point_street', table_name='address_point')
    op.drop_index('ix_address_point_best_id', table_name='address_point')
    op.drop_table('address_point')
