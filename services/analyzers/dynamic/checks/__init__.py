"""The dynamic analyzer's active checks: each one weakness class, tested on every insertion point of the surface,
reported only with a proof."""
