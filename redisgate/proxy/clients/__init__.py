"""Client connections: the gateway (listeners, registry, timers, shutdown), one connection, its
session, and the usage recorded from them.
"""
