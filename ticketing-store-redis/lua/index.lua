-- Lists an event. KEYS: the ids sorted set, the summaries hash. ARGV: event id, summary JSON.
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
