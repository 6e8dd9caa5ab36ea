from .pg_outage import own_postgres

__all__ = ["own_postgres"]
