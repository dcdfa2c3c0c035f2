"""The store: the only writer of PostgreSQL; stores results idempotently and serves them over HTTP."""
