"""simulator decisions (the simulated bank's record, for reconciliation)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('simulator_decisions',
    sa.Column('payment_id', sa.String(length=36), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('payment_id')
    )


def downgrade() -> None:
    op.drop_table('simulator_decisions')
