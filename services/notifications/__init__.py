"""Notifications: e-mails (and later SMS) sent from events; sent-message history."""

NAME = "notifications"
