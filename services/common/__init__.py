"""The small shared kit of every Portail Famille service.

Only what every service needs lives here: configuration, the Flask app factory, errors,
database and migrations, the bus (outbox, relay, inbox, consumer), the event catalogue and
the verification of the gateway's internal tokens. Business rules never do.
"""
