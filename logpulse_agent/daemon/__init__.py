"""``logpulse-agent run``.

compose.py builds every part from the settings; lifecycle.py runs startup → main loop →
shutdown; tasks.py restarts crashed tasks; status_feed.py publishes Vector and actions into the
status; sdnotify.py talks to systemd.
"""
