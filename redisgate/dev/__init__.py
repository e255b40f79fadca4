"""`redisgate dev`: the whole system on one machine from a data folder, and its demo account."""
