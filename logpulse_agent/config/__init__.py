"""The Vector config the control plane serves.

sync.py polls, validates, swaps, reloads, watches and rolls back; decisions.py holds its pure
decisions; book.py what it keeps between polls (applied, fallbacks, rejected) and publishes to
status; store.py the files behind that (live, candidate, superseded, last-known-good configs;
applied.json, rejected.json).
"""
