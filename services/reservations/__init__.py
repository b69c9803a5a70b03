"""Reservations: activities, calendars, basket, bookings, cancellations, attendance."""

NAME = "reservations"
