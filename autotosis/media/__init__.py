"""The only package that starts ffmpeg/ffprobe: probe, decode, encode, the shorts and live graphs."""
