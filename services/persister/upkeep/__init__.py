"""The persister's upkeep, run by `assay fsck|repair|prune` on its host: integrity checks, repair, pruning."""
