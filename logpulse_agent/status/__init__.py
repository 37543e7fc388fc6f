"""The status snapshot: what the daemon knows, written for ``logpulse-agent status``."""
