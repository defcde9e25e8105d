"""The tables the application owns (catalogue) and the Alembic migrations that build them (migrate)."""
