"""Remote actions: run each at most once, deliver every result at least once."""
