-- The schema of the help desk; the first agent is created from ADMIN_PASSWORD at start-up.
CREATE TABLE IF NOT EXISTS agents (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT, role TEXT);
