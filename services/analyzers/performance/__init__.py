"""The performance analyzer: a bounded asyncio load generator against a running app, with latency statistics."""
