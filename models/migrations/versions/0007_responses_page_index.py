"""responses: one index that pages an experiment's responses in entry order

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 07:30:00.000000

The listing orders an experiment's responses by (entry_id, epoch, id). With every column of that order
in one index after experiment_id, the page's ids come from the index alone instead of a heap fetch per
skipped row; the index also serves every lookup the plain experiment_id index served, so it replaces it.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_experiment_page", ["experiment_id", "entry_id", "epoch", "id"])
        batch_op.drop_index("ix_responses_experiment_id")


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_experiment_id", ["experiment_id"])
        batch_op.drop_index("ix_responses_experiment_page")
