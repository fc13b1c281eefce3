"""The store: the database engine, tables and migrations, safe result paths, file modes at rest, API tokens."""
