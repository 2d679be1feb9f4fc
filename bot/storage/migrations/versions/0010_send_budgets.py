"""send budgets: one send schedule per channel shared by every process (PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('send_budgets',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('next_slot', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('channel')
    )


def downgrade() -> None:
    op.drop_table('send_budgets')
