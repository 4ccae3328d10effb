"""drafting follow-up: what the clock did for a proposed disposition (reminder, publication)

Revision ID: 0015_drafting_followup
Revises: 0014_bodies_followup
Create Date: 2026-12-06 13:55:00

"""
from alembic import op
import sqlalchemy as sa

import consensus.models.base


# revision identifiers, used by Alembic.
revision = '0015_drafting_followup'
down_revision = '0014_bodies_followup'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('disposition_review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminded_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('announced_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('disposition_review', schema=None) as batch_op:
        batch_op.drop_column('announced_at')
        batch_op.drop_column('reminded_at')
