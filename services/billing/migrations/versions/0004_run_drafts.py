"""run drafts: one row per household of an invoicing run's draft (streamed runs)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:40:00

The drafts kept so far in ``invoicing_runs.draft`` (one JSON document per run) move to the new
rows, so that runs drafted before the upgrade are shown and finalised as they were drafted.
"""
import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_drafts',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('family_id', sa.String(length=36), nullable=False),
    sa.Column('family_name', sa.String(length=200), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('anomalies', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'family_id')
    )
    op.create_index('ix_run_drafts_run_name', 'run_drafts', ['run_id', 'family_name', 'family_id'], unique=False)
    _move_json_drafts()


def _move_json_drafts() -> None:
    bind = op.get_bind()
    drafts = sa.table('run_drafts', sa.column('run_id'), sa.column('family_id'),
                      sa.column('family_name'), sa.column('total'), sa.column('line_count'),
                      sa.column('lines', sa.JSON), sa.column('anomalies', sa.JSON))
    runs = sa.table('invoicing_runs', sa.column('id'), sa.column('draft', sa.JSON))
    for run_id, draft in bind.execute(sa.select(runs.c.id, runs.c.draft)).all():
        if isinstance(draft, str):
            draft = json.loads(draft)
        if not draft:
            continue
        rows: dict[str, dict] = {}
        for invoice in draft.get('invoices', []):
            lines = invoice.get('lines', [])
            cents = int(sum((Decimal(line['amount']) for line in lines), Decimal(0)) * 100)
            rows[invoice['family_id']] = {
                'run_id': run_id, 'family_id': invoice['family_id'],
                'family_name': invoice.get('family_name') or '', 'total': cents,
                'line_count': len(lines), 'lines': lines, 'anomalies': []}
        for anomaly in draft.get('anomalies', []):
            row = rows.setdefault(anomaly['family_id'], {
                'run_id': run_id, 'family_id': anomaly['family_id'], 'family_name': '',
                'total': 0, 'line_count': 0, 'lines': [], 'anomalies': []})
            row['anomalies'].append(anomaly)
        if rows:
            bind.execute(drafts.insert(), list(rows.values()))
        bind.execute(runs.update().where(runs.c.id == run_id).values(draft={}))


def downgrade() -> None:
    bind = op.get_bind()
    drafts = sa.table('run_drafts', sa.column('run_id'), sa.column('family_id'),
                      sa.column('family_name'), sa.column('total'), sa.column('line_count'),
                      sa.column('lines', sa.JSON), sa.column('anomalies', sa.JSON))
    runs = sa.table('invoicing_runs', sa.column('id'), sa.column('draft', sa.JSON))
    back: dict[str, dict] = {}
    for row in bind.execute(sa.select(drafts).order_by(drafts.c.run_id, drafts.c.family_name,
                                                       drafts.c.family_id)).mappings():
        draft = back.setdefault(row['run_id'], {'invoices': [], 'anomalies': []})
        if row['line_count']:
            draft['invoices'].append({'family_id': row['family_id'],
                                      'family_name': row['family_name'],
                                      'total': f"{Decimal(row['total']) / 100:.2f}",
                                      'lines': row['lines']})
        draft['anomalies'].extend(row['anomalies'] or [])
    for run_id, draft in back.items():
        bind.execute(runs.update().where(runs.c.id == run_id).values(draft=draft))
    op.drop_index('ix_run_drafts_run_name', table_name='run_drafts')
    op.drop_table('run_drafts')
