"""telegram: permanent delivery errors of team replies, bot posts (reminders) linked to threads

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_error', sa.String(length=300), nullable=True))
    op.create_table('team_posts',
    sa.Column('team_chat_id', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_chat_id', 'message_id')
    )
    with op.batch_alter_table('team_posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_posts_handoff_id'), ['handoff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('team_posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_posts_handoff_id'))
    op.drop_table('team_posts')
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.drop_column('delivery_error')
