"""Billing: tariffs, invoices, credit notes, payments, provider callbacks."""

NAME = "billing"
