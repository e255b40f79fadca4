"""Where API keys come from: principals and the caching authenticator, the static file, PostgreSQL,
live change notices.
"""
