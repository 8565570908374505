"""Alembic migrations of the index (run with ``yunying migrate`` or automatically by ``serve``)."""
