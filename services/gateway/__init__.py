"""The edge of Earshot: the Telegram bot and the HTTP ingest for client apps.

The gateway checks every upload (size, duration, that it is audio at all) before a job exists, claims the
idempotency key in PostgreSQL, publishes the job with a broker confirm, and sends parents their replies.
It never runs a model.
"""
