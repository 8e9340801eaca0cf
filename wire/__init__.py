"""What the server and the receiver share: messages on the wire, the receiver's config, logging.

Base dependencies only (`pip install loa` on a Pi, without the server extra).
"""
