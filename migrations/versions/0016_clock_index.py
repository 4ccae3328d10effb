"""the round clock's publication question by index: process(publish_at) for publications still to come

Revision ID: 0016_clock_index
Revises: 0015_drafting_followup
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_clock_index'
down_revision = '0015_drafting_followup'
branch_labels = None
depends_on = None

_DUE = "publish_at IS NOT NULL AND published_at IS NULL"


def upgrade():
    with op.batch_alter_table('process', schema=None) as batch_op:
        batch_op.create_index(
            'ix_process_publication_due',
            ['publish_at'],
            unique=False,
            sqlite_where=sa.text(_DUE),
            postgresql_where=sa.text(_DUE),
        )


def downgrade():
    with op.batch_alter_table('process', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_process_publication_due',
            sqlite_where=sa.text(_DUE),
            postgresql_where=sa.text(_DUE),
        )
