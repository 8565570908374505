"""Alembic upgrade from empty builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from yunying.index.migrate import upgrade
from yunying.index.models import Base


def test_upgrade_from_empty_matches_models(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"patient", "study", "series", "instance", "audit_event"} <= tables


def test_query_paths_are_indexed(db_url: str) -> None:
    """Every QIDO/C-FIND matching column at study level has an index (no full scans at scale)."""
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        indexed = {next(iter(ix["column_names"])) for ix in inspect(engine).get_indexes("study")}
        unique = {next(iter(uc["column_names"])) for uc in inspect(engine).get_unique_constraints("study")}
    finally:
        engine.dispose()
    for column in ("study_date", "patient_id", "patient_name_norm", "accession_number", "patient_fk"):
        assert column in indexed, column
    assert "study_uid" in unique | indexed
