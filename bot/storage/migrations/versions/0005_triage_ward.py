"""dashboard: ward of a triage decision (a ward account's decision applies to its ward only)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('question_triage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ward', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_question_triage_ward'), ['ward'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('question_triage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_question_triage_ward'))
        batch_op.drop_column('ward')
