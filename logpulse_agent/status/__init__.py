"""The status snapshot ``logpulse-agent status`` prints.

sections.py (typed sections of what the daemon knows), tracker.py (the daemon writes
status.json), report.py (the command reads it, judges health, prints it).
"""
