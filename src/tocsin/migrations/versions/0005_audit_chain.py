"""audit log hash chain and personal side table (issue 8, F6)

Adds the chain columns to ``audit_log`` (pseudonymous ``actor_id``,
``on_behalf_of``, ``seq``, ``prev_hash``, ``hash``) and the ``audit_personal``
side table that holds user names and IP addresses outside the hash, so GDPR
erasure and retention can clear them without breaking the chain.

Rows written before this migration keep ``seq``/``hash`` NULL: the chain
starts after them (docs/decisions/0009-audit-hash-chain.md). Columns are only
added (docs/decisions/0006).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('actor_id', sa.String(length=120), nullable=True))
    op.add_column('audit_log', sa.Column('on_behalf_of', sa.String(length=8), nullable=True))
    op.add_column('audit_log', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('audit_log', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_log', sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_audit_log_actor_id'), 'audit_log', ['actor_id'], unique=False)
    # Unique: two appends that read the same head can never both commit (no fork).
    op.create_index(op.f('ix_audit_log_seq'), 'audit_log', ['seq'], unique=True)
    op.create_table('audit_personal',
    sa.Column('entry_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_name', sa.String(length=200), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['audit_log.id'],
                            name=op.f('fk_audit_personal_entry_id_audit_log')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_audit_personal'))
    )
    op.create_index(op.f('ix_audit_personal_at'), 'audit_personal', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_personal_at'), table_name='audit_personal')
    op.drop_table('audit_personal')
    op.drop_index(op.f('ix_audit_log_seq'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_actor_id'), table_name='audit_log')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        for column in ('hash', 'prev_hash', 'seq', 'on_behalf_of', 'actor_id'):
            batch_op.drop_column(column)
