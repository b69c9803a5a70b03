"""privacy: erasure requests and audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:05:13.377131
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.Column('commune_id', sa.String(length=36), nullable=True),
    sa.Column('service', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('family_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_commune_at', ['commune_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_family_id'), ['family_id'], unique=False)

    op.create_table('erasure_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('family_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('commune_ids', sa.JSON(), nullable=False),
    sa.Column('decisions', sa.JSON(), nullable=False),
    sa.Column('refusal_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.create_index('ix_erasure_requests_family', ['family_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_erasure_requests_family')

    op.drop_table('erasure_requests')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_family_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_account_id'))
        batch_op.drop_index('ix_audit_commune_at')

    op.drop_table('audit_entries')
