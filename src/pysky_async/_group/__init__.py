"""Consumer groups: many processes share one stream through a partitioned log in PostgreSQL.

One leader (``pg_try_advisory_lock``) reads the source and appends its events to the log of that
source, partitioned by a stable hash of the DID (``log``, ``leader``); the workers of a group lease
partitions (``leases``) and run each through a ``Runner``, committing the handler's effects, the
per-repo ``rev`` and the partition's watermark in one transaction (``worker``). ``status`` reads it
all back. The group's resume point is its lowest partition watermark.
"""

DEFAULT_PARTITIONS = 24
"""The partitions of a new log when none are asked for: 24 split evenly over 1, 2, 3, 4, 6, 8 or 12
workers (16 over three workers is 6/6/4: the busiest worker bounds the group)."""
