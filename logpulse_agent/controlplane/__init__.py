"""Talking to the control plane.

protocol.py (the wire format, pure), transport.py (one request with retries), client.py (the
endpoints), enrol.py (bootstrap token → identity), identity.py (identity.json, agent token).
This ``__init__`` imports nothing: the reference server imports :mod:`.protocol` and must not
pull the HTTP client in with it.
"""
