"""RESP on the wire, sans-IO: request framing (inline commands, runs, size limits), reply framing,
and the replies the gateway encodes.
"""
