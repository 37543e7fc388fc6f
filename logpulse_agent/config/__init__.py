"""The Vector config the control plane serves.

sync.py polls, validates, swaps, reloads, watches and rolls back; decisions.py holds its pure
decisions; store.py its files (live, candidate, last-known-good) and records (applied.json,
rejected.json).
"""
