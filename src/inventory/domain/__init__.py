"""The stock domain: commands, events, states and the pure `decide`/`evolve` (no I/O)."""
