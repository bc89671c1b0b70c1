"""Everything that runs ffmpeg or ffprobe lives in this package, and only here.

Other modules pass typed values (paths, millisecond times, sizes, relative regions) and
get typed values back; they never see a command line.  Commands are argv lists (never a
shell), input and output paths are given as ``file:`` URLs so names with ``:``, a
leading ``-`` or other odd characters are never parsed as options or protocols.

``tools`` finds and runs the binaries and stops the processes; ``probe``, ``decode``, ``encode``,
``shorts_graph`` and ``live`` build on it.
"""
