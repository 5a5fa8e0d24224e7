"""Update: the metric store, buffered updates, curve counts, compute groups and sync."""
