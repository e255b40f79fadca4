"""Data plane: the RESP gateway in front of each instance's backing Redis."""
