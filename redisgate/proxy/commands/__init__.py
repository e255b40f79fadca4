"""The command table: Redis's own metadata and key specs, how the gateway routes each command, and
the replies it writes itself (sans-IO).
"""
