"""Alembic migrations of the settings database, shipped inside the package."""
