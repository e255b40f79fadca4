"""Connections to the backing Redis: one upstream connection, per-instance pools, what a dedicated
connection is doing, the scripts' key users.
"""
