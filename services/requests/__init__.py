"""Requests: categories, requests with documents, the agents' workflow."""

NAME = "requests"
