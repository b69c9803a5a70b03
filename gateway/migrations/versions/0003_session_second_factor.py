"""second factor state of a session

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:25:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sessions opened before agents had a second factor would keep their roles without one:
    # everybody logs in again once.
    op.execute("DELETE FROM sessions")
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('second_factor', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('second_factor')
