"""The hand-edited label format: parse, write, import."""
