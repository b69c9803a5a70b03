"""The gateway: the one public entry. Routing, SSO sessions, internal tokens, rate limits."""

NAME = "gateway"
SERVICES = ("accounts", "reservations", "billing", "requests", "notifications")
