"""``logpulse-agent run``: build the parts, start the tasks, stop them on SIGTERM."""
