-- The schema and the first account of the help desk.
CREATE TABLE IF NOT EXISTS agents (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT, role TEXT);
INSERT OR IGNORE INTO agents (username, password_hash, role)
VALUES ('admin', 'pbkdf2:sha256:600000$seed$1f0c8d9a3b2e', 'admin');
