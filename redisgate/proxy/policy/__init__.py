"""What a key may do, sans-IO with the clock passed in: scope check, rate and connection limits,
daily quotas, usage counters, the auth-failure throttle.
"""
