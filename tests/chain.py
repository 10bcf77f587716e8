"""Chain fixtures (being written)."""
