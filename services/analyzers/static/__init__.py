"""The static analyzer: security, quality, type, complexity, dead-code, secret and dependency tools on the source."""
