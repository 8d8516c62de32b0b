"""Route modules of the operator platform, one per area of the UI."""
