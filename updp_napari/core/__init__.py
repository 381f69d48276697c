"""The bottom layer (numpy and the standard library only): errors, spans, boxes, the shared
vocabularies, the workspace key and what derives from it, durable SQLite files, atomic
owner-only writes, progress, small metrics, times of day and the plugin registry."""
