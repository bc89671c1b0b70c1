"""autotosis: highlight reels from game-stream videos with a small CPU-trained classifier."""

__version__ = "0.1.0"
