"""Results: the per-run records (the source of truth), the leaderboard and the report rendered from them."""
