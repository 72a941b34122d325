"""HTML reports built from a results store (they read only the store)."""
