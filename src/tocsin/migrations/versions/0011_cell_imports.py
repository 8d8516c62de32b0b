"""imported cell models (issue 11, point 2)

Adds ``cell_import`` and ``cell``: an operator's real cells, imported from its CSV,
replace that operator's synthetic cells in reach estimates. Tables are only added.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

UTC = sa.DateTime(timezone=True)

revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cell_import',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('operator', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('cells', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('imported_by', sa.String(length=120), nullable=False),
        sa.Column('imported_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_cell_import_operator', 'cell_import', ['operator'])
    op.create_table(
        'cell',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('cell_id', sa.String(length=64), nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=False),
        sa.Column('azimuth', sa.Float(), nullable=False),
        sa.Column('beamwidth', sa.Float(), nullable=False),
        sa.Column('range_m', sa.Float(), nullable=False),
        sa.Column('tech', sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['cell_import.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('import_id', 'cell_id'),
    )
    op.create_index('ix_cell_import_id', 'cell', ['import_id'])


def downgrade() -> None:
    op.drop_index('ix_cell_import_id', table_name='cell')
    op.drop_table('cell')
    op.drop_index('ix_cell_import_operator', table_name='cell_import')
    op.drop_table('cell_import')
