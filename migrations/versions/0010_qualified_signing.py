"""qualified signing: certificate revocation, sealed (B-LTA) letters, CSC remote signing

Revision ID: 0010_qualified_signing
Revises: 0009_api_tokens
Create Date: 2026-12-06 10:40:00

"""

import sqlalchemy as sa
from alembic import op

import consensus.models.base

# revision identifiers, used by Alembic.
revision = "0010_qualified_signing"
down_revision = "0009_api_tokens"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("organisation_certificate") as batch:
        batch.add_column(
            sa.Column("revoked_at", consensus.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("revocation_reason", sa.Text(), nullable=False, server_default="")
        )
    with op.batch_alter_table("organisation_certificate") as batch:
        batch.alter_column("revocation_reason", server_default=None)
    with op.batch_alter_table("joint_letter") as batch:
        batch.add_column(
            sa.Column("sealed_at", consensus.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("signing_settings") as batch:
        batch.add_column(
            sa.Column("csc_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("csc_service_url", sa.String(length=500), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "csc_credential_id", sa.String(length=300), nullable=False, server_default=""
            )
        )
        batch.add_column(sa.Column("csc_sealed_token", sa.Text(), nullable=True))
    with op.batch_alter_table("signing_settings") as batch:
        batch.alter_column("csc_enabled", server_default=None)
        batch.alter_column("csc_service_url", server_default=None)
        batch.alter_column("csc_credential_id", server_default=None)


def downgrade():
    with op.batch_alter_table("signing_settings") as batch:
        batch.drop_column("csc_sealed_token")
        batch.drop_column("csc_credential_id")
        batch.drop_column("csc_service_url")
        batch.drop_column("csc_enabled")
    with op.batch_alter_table("joint_letter") as batch:
        batch.drop_column("sealed_at")
    with op.batch_alter_table("organisation_certificate") as batch:
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_at")
