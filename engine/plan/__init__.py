"""Planning: run configuration, the strategy context and signals resolved to fill bars (no fills, no cash)."""
