"""What the server and the receiver share: messages on the wire, the receiver's config,
logging, the atomic file write and MP3 frame headers.

Base dependencies only (`pip install loa` on a Pi, without the server extra).
"""
