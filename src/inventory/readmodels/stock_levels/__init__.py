"""Stock levels: the projector and the queries of `stock_levels` (projections/0006, 0045)."""
