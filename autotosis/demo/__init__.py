"""The synthetic sample generator and the demo."""
