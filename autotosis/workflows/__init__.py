"""Many VODs and loops around the stages: batch (engines: local, Ray), review, live."""
