"""permissions: partnerships, cooperations, training records, two-person rule (issue 8)

Tables and columns are only added (docs/decisions/0006).

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('partnership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposer_id', sa.String(length=8), nullable=False),
    sa.Column('partner_id', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('ends_at', UTC, nullable=False),
    sa.Column('proposed_by', sa.String(length=120), nullable=False),
    sa.Column('proposed_at', UTC, nullable=False),
    sa.Column('accepted_by', sa.String(length=120), nullable=True),
    sa.Column('accepted_at', UTC, nullable=True),
    sa.Column('ended_by', sa.String(length=120), nullable=True),
    sa.Column('ended_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['proposer_id'], ['authority.id'], name=op.f('fk_partnership_proposer_id_authority')),
    sa.ForeignKeyConstraint(['partner_id'], ['authority.id'], name=op.f('fk_partnership_partner_id_authority')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partnership'))
    )
    op.create_index(op.f('ix_partnership_proposer_id'), 'partnership', ['proposer_id'], unique=False)
    op.create_index(op.f('ix_partnership_partner_id'), 'partnership', ['partner_id'], unique=False)
    op.create_table('cooperation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cooperation')),
    sa.UniqueConstraint('name', name=op.f('uq_cooperation_name'))
    )
    op.create_table('cooperation_member',
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('cooperation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_cooperation_member_authority_id_authority')),
    sa.ForeignKeyConstraint(['cooperation_id'], ['cooperation.id'], name=op.f('fk_cooperation_member_cooperation_id_cooperation')),
    sa.PrimaryKeyConstraint('authority_id', name=op.f('pk_cooperation_member'))
    )
    op.create_index(op.f('ix_cooperation_member_cooperation_id'), 'cooperation_member', ['cooperation_id'], unique=False)
    op.create_table('training_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('trained_on', sa.Date(), nullable=False),
    sa.Column('trainer', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=120), nullable=False),
    sa.Column('recorded_at', UTC, nullable=False),
    sa.Column('revoked_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_training_record_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_record'))
    )
    op.create_index(op.f('ix_training_record_user_id'), 'training_record', ['user_id'], unique=False)
    op.create_table('campaign_member_reach',
    sa.Column('campaign_id', sa.String(length=32), nullable=False),
    sa.Column('authority_id', sa.String(length=8), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_member_reach_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'authority_id', name=op.f('pk_campaign_member_reach'))
    )
    op.add_column('authority', sa.Column('two_person_rule', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('campaign', sa.Column('approved_by', sa.String(length=120), nullable=True))
    op.add_column('campaign', sa.Column('approved_at', UTC, nullable=True))
    op.add_column('campaign', sa.Column('acting_authority_id', sa.String(length=8), nullable=True))
    op.add_column('campaign', sa.Column('on_behalf_request', sa.JSON(), nullable=True))


def downgrade() -> None:
    for column in ('on_behalf_request', 'acting_authority_id', 'approved_at', 'approved_by'):
        op.drop_column('campaign', column)
    op.drop_column('authority', 'two_person_rule')
    op.drop_table('campaign_member_reach')
    op.drop_index(op.f('ix_training_record_user_id'), table_name='training_record')
    op.drop_table('training_record')
    op.drop_index(op.f('ix_cooperation_member_cooperation_id'), table_name='cooperation_member')
    op.drop_table('cooperation_member')
    op.drop_table('cooperation')
    op.drop_index(op.f('ix_partnership_partner_id'), table_name='partnership')
    op.drop_index(op.f('ix_partnership_proposer_id'), table_name='partnership')
    op.drop_table('partnership')
