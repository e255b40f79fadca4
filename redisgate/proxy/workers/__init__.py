"""`redisgate proxy --workers N`: the supervisor and one worker process."""
