"""conversation_context: the entry last answered and the choices last offered, per user (follow-ups)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversation_context',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('faq_id', sa.String(length=96), nullable=True),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('conversation_context')
