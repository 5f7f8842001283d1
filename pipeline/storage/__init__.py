"""The archive: SQLAlchemy Core tables, migrations and idempotent writes."""
