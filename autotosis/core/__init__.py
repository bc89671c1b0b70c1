"""Small shared values and helpers: typed errors, time formatting, regions, atomic files, progress, prefetch, config."""
