"""the user's interface language (issue 9.1)

Adds ``app_user.language`` (fr, nl, de, en; NULL = follow the browser's
Accept-Language). A column is only added.

Follows 0006 (web sessions).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.drop_column('language')
