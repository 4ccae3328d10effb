"""personal access tokens for the REST API

Revision ID: 0009_api_tokens
Revises: 0008_identity
Create Date: 2026-12-06 10:30:00

"""
from alembic import op
import sqlalchemy as sa

import consensus.models.base


# revision identifiers, used by Alembic.
revision = '0009_api_tokens'
down_revision = '0008_identity'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.String(length=20), nullable=False),
    sa.Column('created_at', consensus.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', consensus.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', consensus.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("scopes IN ('read', 'read write')", name=op.f('ck_api_token_scopes_known')),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_api_token_expires_after_creation')),
    sa.CheckConstraint("name <> ''", name=op.f('ck_api_token_name_not_empty')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['user_account.id'], name=op.f('fk_api_token_revoked_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_api_token_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))
    op.drop_table('api_token')
