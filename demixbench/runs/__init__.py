"""The run engine: planning, identity of units, computing them, executors, the store, the estimate cache."""
