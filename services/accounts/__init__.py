"""Accounts: identity, communes, households, agents, memberships, news."""

NAME = "accounts"
