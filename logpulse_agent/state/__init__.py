"""The agent's files on disk.

layout.py says where every file lives; atomic.py writes them crash-safely; records.py reads
and writes typed JSON records (schema versions, corrupt files set aside). Each record type
lives with its concept: config/store.py, controlplane/identity.py, actions/, upgrade/record.py.
"""
