"""The read models: each one's projector handler and every query on its tables."""
