-- Cases for services/analyzers/static/rules/templates.yml (`semgrep --test` reads its annotations after a hash).
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT, role TEXT);
-- # ruleid: sql-seeded-default-credentials
INSERT INTO users (username, password_hash, role) VALUES ('admin', 'admin123', 'admin');
-- # ok: sql-seeded-default-credentials
INSERT INTO products (name, price) VALUES ('lamp', 20);
-- # ruleid: sql-seeded-default-credentials
INSERT OR IGNORE INTO agents (username, password_hash, role) VALUES ('root', 'pbkdf2:sha256:600000$x$1f0c', 'admin');
