"""contact lists and groups (issue 10, points 6 and 7)

Adds the tables ``contact_list``, ``contact``, ``contact_group``,
``contact_group_member``, ``contact_column_mapping`` and ``contact_upload``, and the column
``campaign.targets`` (the groups and lists a campaign reaches). Tables and columns
are only added
(docs/decisions/0006).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('contact_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_contact_list_authority_id_authority'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_list')),
    sa.UniqueConstraint('authority_id', 'name', name=op.f('uq_contact_list_authority_id_name'))
    )
    op.create_index(op.f('ix_contact_list_authority_id'), 'contact_list', ['authority_id'], unique=False)
    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('mobile', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('source_row', sa.Integer(), nullable=True),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['contact_list.id'], name=op.f('fk_contact_list_id_contact_list'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact')),
    sa.UniqueConstraint('list_id', 'key', name=op.f('uq_contact_list_id_key'))
    )
    op.create_index(op.f('ix_contact_list_id'), 'contact', ['list_id'], unique=False)
    op.create_index(op.f('ix_contact_mobile'), 'contact', ['mobile'], unique=False)
    op.create_table('contact_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('area', sa.Text(), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_contact_group_authority_id_authority'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_group')),
    sa.UniqueConstraint('authority_id', 'name', name=op.f('uq_contact_group_authority_id_name'))
    )
    op.create_index(op.f('ix_contact_group_authority_id'), 'contact_group', ['authority_id'], unique=False)
    op.create_table('contact_group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['contact_group.id'], name=op.f('fk_contact_group_member_group_id_contact_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_group_member_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'contact_id', name=op.f('pk_contact_group_member'))
    )
    op.create_index(op.f('ix_contact_group_member_contact_id'), 'contact_group_member', ['contact_id'], unique=False)
    op.create_table('contact_column_mapping',
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('header', sa.String(length=200), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_contact_column_mapping_authority_id_authority'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('authority_id', 'header', name=op.f('pk_contact_column_mapping'))
    )
    op.create_table('contact_upload',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('username', sa.String(length=120), nullable=False),
    sa.Column('list_name', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_contact_upload_authority_id_authority'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_contact_upload'))
    )
    op.create_index(op.f('ix_contact_upload_created_at'), 'contact_upload', ['created_at'], unique=False)
    with op.batch_alter_table('campaign') as batch:
        batch.add_column(sa.Column('targets', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_index(op.f('ix_contact_upload_created_at'), table_name='contact_upload')
    op.drop_table('contact_upload')
    with op.batch_alter_table('campaign') as batch:
        batch.drop_column('targets')
    op.drop_table('contact_column_mapping')
    op.drop_index(op.f('ix_contact_group_member_contact_id'), table_name='contact_group_member')
    op.drop_table('contact_group_member')
    op.drop_index(op.f('ix_contact_group_authority_id'), table_name='contact_group')
    op.drop_table('contact_group')
    op.drop_index(op.f('ix_contact_mobile'), table_name='contact')
    op.drop_index(op.f('ix_contact_list_id'), table_name='contact')
    op.drop_table('contact')
    op.drop_index(op.f('ix_contact_list_authority_id'), table_name='contact_list')
    op.drop_table('contact_list')
