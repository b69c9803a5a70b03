"""The composition root: the portail command, embedded mode, demo data, SMTP sink."""
