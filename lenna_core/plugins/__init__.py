"""The plugin system: hook specifications, plugin interfaces and their bases, loading entry
points, the registry and contract checks."""
