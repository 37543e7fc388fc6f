"""Heartbeats: report health, deliver action results, receive pending actions.

loop.py sends them; body.py builds the body from a snapshot of the status sections (pure).
"""
