"""Control plane: the aiohttp HTTP API backed by Postgres."""
