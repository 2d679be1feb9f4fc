"""campaigns: retry schedule and resumable parts on deliveries, report bookkeeping, channel pauses

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('parts_done', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_deliveries_claim', ['campaign_id', 'channel', 'state', 'id'], unique=False)
        batch_op.create_index('ix_deliveries_state_channel', ['state', 'channel'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('progress_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True))
    # Campaigns that finished before this revision are not reported again.
    op.execute("UPDATE campaigns SET reported_at = COALESCE(finished_at, created_at) "
               "WHERE state IN ('done', 'expired', 'cancelled')")

    op.create_table('channel_pauses',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel')
    )


def downgrade() -> None:
    op.drop_table('channel_pauses')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('reported_at')
        batch_op.drop_column('progress_at')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_state_channel')
        batch_op.drop_index('ix_deliveries_claim')
        batch_op.drop_column('parts_done')
        batch_op.drop_column('next_attempt_at')
