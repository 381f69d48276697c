"""The bottom layer: records, errors, progress and the plugin registry (numpy and stdlib only)."""
