"""Start and stop real PostgreSQL and redis-server processes (dev stack and test fixtures)."""
