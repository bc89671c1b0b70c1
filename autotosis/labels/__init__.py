"""Label files, the hand-edited main user interface: ``values`` (spans, entries, the file), ``parse`` (the format,
every error with file:line:col), ``writer``, ``importers`` (data.csv, Audacity)."""
