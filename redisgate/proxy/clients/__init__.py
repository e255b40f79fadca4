"""Client connections: the gateway (listeners, registry, timers, shutdown), one connection, its
session.
"""
