"""The Vector child process and everything the agent knows about Vector.

supervisor.py (start, stop, reload, restart with backoff), states.py (named states, exits),
child.py (one process, stopped bounded), process.py (spawning, pid file, leftovers),
logwatch.py (confirmations from vector.log), options.py (the agent's global options),
commands.py (``vector --version``, ``vector validate``), secret_backend.py (the token).
"""
