"""The process shell: the `loa` command and what starts the server, the demo and its checks.

It may import every other package; nothing imports it. Receiver commands import only
`devices` and `wire`, so a Pi without the server extra runs `loa receiver` and `loa doctor`.
"""
