"""dashboard: staff sessions, login throttling, question triage, knowledge overlays, web-chat outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:31:40.604171
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_ip_created', ['ip', 'created_at'], unique=False)
        batch_op.create_index('ix_login_attempts_username_created', ['username', 'created_at'], unique=False)

    op.create_table('staff_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_id'), ['staff_id'], unique=False)

    op.create_table('web_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('web_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_outbox_user_id'), ['user_id'], unique=False)

    op.create_table('question_triage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('normalized', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('faq_id', sa.String(length=96), nullable=True),
    sa.Column('draft_id', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['faq_drafts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('question_triage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_question_triage_draft_id'), ['draft_id'], unique=False)

    with op.batch_alter_table('faq_drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='entry', nullable=False))
        batch_op.add_column(sa.Column('entry_id', sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column('category', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('title', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('questions', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('keywords', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('links', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('related', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('wards', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('entry_source', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('ward', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('published_by', sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f('ix_faq_drafts_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_faq_drafts_ward'), ['ward'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('faq_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_drafts_ward'))
        batch_op.drop_index(batch_op.f('ix_faq_drafts_entry_id'))
        batch_op.drop_column('published_by')
        batch_op.drop_column('published_at')
        batch_op.drop_column('updated_by')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('ward')
        batch_op.drop_column('entry_source')
        batch_op.drop_column('wards')
        batch_op.drop_column('related')
        batch_op.drop_column('links')
        batch_op.drop_column('keywords')
        batch_op.drop_column('questions')
        batch_op.drop_column('title')
        batch_op.drop_column('category')
        batch_op.drop_column('entry_id')
        batch_op.drop_column('kind')

    with op.batch_alter_table('question_triage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_question_triage_draft_id'))

    op.drop_table('question_triage')
    with op.batch_alter_table('web_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_outbox_user_id'))

    op.drop_table('web_outbox')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_id'))
        batch_op.drop_index(batch_op.f('ix_staff_sessions_expires_at'))

    op.drop_table('staff_sessions')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_username_created')
        batch_op.drop_index('ix_login_attempts_ip_created')

    op.drop_table('login_attempts')
