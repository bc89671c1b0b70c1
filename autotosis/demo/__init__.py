"""The synthetic sample generator (``samples`` and the modules it draws with) and the demo."""
