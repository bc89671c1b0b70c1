"""Events -> files for editors and viewers: OTIO, EDL, FCPXML, chapters, SRT, JSON, CSV.

One module per family: ``editors`` (OTIO, EDL, FCPXML), ``chapters``, ``subtitles`` (SRT); ``timecode`` holds
the exact time arithmetic they share and ``files`` writes the chosen formats together (JSON and CSV are the
events files of ``detect.segments``).

The editor formats are written by OpenTimelineIO and its maintained adapters
(``otio-cmx3600-adapter`` for CMX 3600 EDL, ``otio-fcpx-xml-adapter`` for FCPXML), never by
hand.  One timeline holds one video track with one clip per event; each clip references
its source video (an absolute ``file://`` URL, the whole video as the available range) and
its source range is the event in whole frames at the source's frame rate.

Times stay exact: event bounds are integer milliseconds and become frame numbers by exact
rational arithmetic (``Fraction``), so 29.97 and 59.94 fps sources get NTSC frame counts,
not float drift.  A source whose rate is not a standard timecode rate (a variable frame
rate recording reports its average, e.g. 24.985 fps) is placed on the nearest standard rate
and the timeline's metadata says so.

Chapters come in two forms from one list: ffmetadata (muxed into a rendered reel by
``media.concat_segments(..., chapters_file=...)``) and a YouTube description block.  In the
source video a chapter starts where a highlight starts and lasts until the next one, as
YouTube chapters do; in a reel the chapters are the reel's pieces (see ``reel_chapters``).
"""
