"""qualified signing: certificate revocation, sealed (B-LTA) letters

Revision ID: 0010_qualified_signing
Revises: 0006_signatures
Create Date: 2026-12-06 10:40:00

"""

from alembic import op
import sqlalchemy as sa

import consensus.models.base


# revision identifiers, used by Alembic.
revision = "0010_qualified_signing"
down_revision = "0006_signatures"
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


def downgrade():
    with op.batch_alter_table("joint_letter") as batch:
        batch.drop_column("sealed_at")
    with op.batch_alter_table("organisation_certificate") as batch:
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_at")
