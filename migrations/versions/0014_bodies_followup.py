"""bodies follow-up: cancelled meetings, archived bodies, documents on agenda items

Revision ID: 0014_bodies_followup
Revises: 0013_drafting
Create Date: 2026-12-06 14:00:00

"""
from alembic import op
import sqlalchemy as sa

import consensus.models.base


# revision identifiers, used by Alembic.
revision = '0014_bodies_followup'
down_revision = '0013_drafting'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('standing_body', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('archived_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_standing_body_archived_by_id_user_account'), 'user_account', ['archived_by_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_meeting_cancelled_by_id_user_account'), 'user_account', ['cancelled_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_check_constraint(batch_op.f('ck_meeting_cancelled_with_reason'), "cancelled_at IS NULL OR cancel_reason <> ''")

    op.create_table('agenda_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', consensus.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("filename <> ''", name=op.f('ck_agenda_document_filename_not_empty')),
    sa.CheckConstraint('size > 0', name=op.f('ck_agenda_document_size_positive')),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_item.id'], name=op.f('fk_agenda_document_item_id_agenda_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], name=op.f('fk_agenda_document_uploaded_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_document'))
    )
    with op.batch_alter_table('agenda_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_document_item_id'), ['item_id'], unique=False)


def downgrade():
    with op.batch_alter_table('agenda_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_document_item_id'))
    op.drop_table('agenda_document')

    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_meeting_cancelled_with_reason'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_meeting_cancelled_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by_id')
        batch_op.drop_column('cancelled_at')

    with op.batch_alter_table('standing_body', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_standing_body_archived_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('archived_by_id')
        batch_op.drop_column('archived_at')
