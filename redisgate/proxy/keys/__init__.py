"""Where API keys come from: principals and the caching authenticator, the static file, PostgreSQL;
and how their changes reach live sessions: change notices, the refresher.
"""
