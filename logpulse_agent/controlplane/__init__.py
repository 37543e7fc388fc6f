"""Talking to the control plane: the wire format, HTTP with retries, the client, enrolment.

This ``__init__`` imports nothing: the reference server imports :mod:`.protocol` (pure) and
must not pull the HTTP client in with it.
"""
