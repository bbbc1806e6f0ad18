"""Training and evaluation (torch)."""
