"""Storage: SQLAlchemy models, repositories and the Store that owns the engine."""
