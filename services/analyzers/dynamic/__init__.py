"""The dynamic analyzer: HTTP tools that inspect a running app (reachability, headers, cookies, CORS, paths, endpoints)."""
