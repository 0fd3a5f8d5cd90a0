"""jobs: drop the completed_responses and completed_ratings counters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:00:00.000000

Nothing wrote them since progress became counts of what is stored (a crash can neither lose nor
double-count those); left in place they read as 0 to anyone who queries the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("completed_responses")
        batch_op.drop_column("completed_ratings")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("completed_ratings", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("completed_responses", sa.Integer(), nullable=False, server_default="0"))
