"""How an instance gets a real Redis: a supervised local redis-server or an operator's server."""
