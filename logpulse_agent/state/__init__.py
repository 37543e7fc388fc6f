"""The agent's files on disk: where they live, crash-safe writes, typed JSON records."""
