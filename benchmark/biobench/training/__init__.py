"""Training: run profiles, in-memory batches, the Lightning pairing module and the runner."""
