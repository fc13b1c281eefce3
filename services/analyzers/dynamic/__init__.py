"""The dynamic analyzer: HTTP checks of a running app (reachability, headers, cookies, CORS, paths, endpoints)."""
