"""The batch resource: `/api/batches/…`."""
