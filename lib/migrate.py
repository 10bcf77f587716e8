"""Schema setup and numbered migrations.

`schema.sql` is the first release's schema: it creates every table with IF NOT
EXISTS, so running it again is a no-op. Every later change is a numbered migration,
`migrations/NNN_name.sql` (idempotent statements) or `migrations/NNN_name.py` (a
function `up(db)`, for changes SQL cannot make idempotent on both databases, such as
adding a column); each runs once and is recorded in `schema_migrations`. Run as
`python -m lib.migrate` (make db-init, make db-migrate).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib import db as dbmod  # noqa: E402
from lib.db import utc_now  # noqa: E402

SCHEMA = os.path.join(ROOT, "schema.sql")
MIGRATIONS = os.path.join(ROOT, "migrations")


def migration_files():
    if not os.path.isdir(MIGRATIONS):
        return []
    names = sorted(n for n in os.listdir(MIGRATIONS)
                   if n.endswith((".sql", ".py")) and n[:3].isdigit() and n[3:4] == "_")
    return [(int(n[:3]), os.path.join(MIGRATIONS, n)) for n in names]


def init(db):
    """Create the schema and apply pending migrations; return the versions applied."""
    with open(SCHEMA, encoding="utf-8") as f:
        db.run_script(f.read())
    done = {r["version"] for r in db.query("SELECT version FROM schema_migrations")}
    applied = []
    for version, path in migration_files():
        if version in done:
            continue
        if path.endswith(".py"):
            _run_python(db, path)
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            # MariaDB commits DDL implicitly, so a migration is made of idempotent statements.
            db.run_script(text)
        db.insert("schema_migrations", {"version": version, "name": os.path.basename(path),
                                        "applied_at": utc_now()})
        applied.append(version)
    return applied


def _run_python(db, path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("migration_" + os.path.basename(path)[:3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.up(db)


def columns(db, table):
    """The column names of `table`."""
    if db.is_sqlite:
        return {r["name"] for r in db.query("PRAGMA table_info(%s)" % table)}
    return {r["name"] for r in db.query("SELECT column_name AS name FROM information_schema.columns "
                                        "WHERE table_schema = DATABASE() AND table_name = ?", (table,))}


def add_column(db, table, name, definition):
    """ALTER TABLE ... ADD COLUMN unless the column exists (a re-run after a crash is a no-op)."""
    if name not in columns(db, table):
        db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, name, definition))


def seed_defaults(db):
    """Rows every installation starts with (item categories, the catalog version)."""
    from lib import catalog, catalog_cache
    catalog_cache.ensure_version_row(db)
    catalog.seed_categories(db)


def main():
    from lib import env
    env.load()
    db = dbmod.get_db()
    applied = init(db)
    seed_defaults(db)
    print(f"database ready ({db.driver}); migrations applied: {applied or 'none'}")


if __name__ == "__main__":
    main()
