"""The gateway's JSON API: one Litestar Router per resource (tasks, batches, apps, reports, tokens, dead
letters, contracts, health, metrics)."""
