"""Remote actions: each runs at most once, every result is delivered at least once.

executor.py runs them; handler.py is what an action type implements, registry.py maps types
to handlers; ledger.py records ids before anything runs; journal.py keeps results until a
heartbeat carried them.
"""
