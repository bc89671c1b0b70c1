"""Video to scores to events: scan (dense and coarse-to-fine), scores, events, the pipeline that chains them."""
