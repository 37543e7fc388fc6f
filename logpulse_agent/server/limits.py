"""Numeric bounds of input options beyond their Rust type: values Vector refuses or crashes on.

The type's own range (u32, u64/usize read as at most 2**63 - 1) is checked by ``render_schema``;
these are the narrower limits found by following each option into Vector 0.57.0's source (and
its dependencies at the versions in its ``Cargo.lock``). Options not listed here were followed
too and take their whole type's range safely (say so next to the option in ``render_inputs``).
"""

from __future__ import annotations

# SO_RCVBUF: socket2's set_recv_buffer_size casts the usize to a C int, so above 2**31 - 1 the
# kernel gets a wrapped-around (negative or tiny) size (src/net.rs, lib/vector-core/src/tcp.rs).
MAX_SOCKET_BUFFER = 2**31 - 1
# Linux refuses TCP_KEEPIDLE outside 1..32767 (MAX_TCP_KEEPIDLE); Vector then only logs a warning
# per connection and runs without keepalive (lib/vector-core/src/tls/incoming.rs).
MAX_KEEPALIVE_SECS = 32767
# The file and kubernetes_logs sources allocate a zeroed buffer of max_line_bytes for the
# checksum fingerprint when they start (lib/file-source-common/src/fingerprinter.rs
# `vec![0u8; max_line_length]`): a huge value aborts Vector. 16 MiB is far above any real line.
MAX_LINE_BYTES = 16 * 1024 * 1024
# The socket source's UDP mode allocates max_length + 1 bytes up front (src/sources/socket/
# udp.rs); no datagram exceeds 64 KiB, so 1 MiB leaves room and cannot exhaust memory.
MAX_UDP_LENGTH = 1024 * 1024
# ignore_older_secs: `Utc::now() - chrono::Duration::seconds(secs as i64)` panics once the
# result leaves chrono's range (lib/file-source/src/file_server.rs calculate_ignore_before).
# Capped at 100 years, far inside that range and far beyond any useful age.
MAX_AGE_SECS = 100 * 365 * 24 * 3600
# delay_deletion_ms feeds a tokio-util DelayQueue, which panics ("invalid deadline") for a
# deadline more than 2**36 - 1 ms (~795 days) after the queue was created
# (src/kubernetes/reflector.rs). One day keeps metadata long enough and never comes near it.
MAX_DELAY_DELETION_MS = 24 * 3600 * 1000
# Linux's sun_path holds 108 bytes including the final NUL; binding a longer path fails and
# the unix socket sources panic (src/sources/util/unix_stream.rs, unix_datagram.rs).
MAX_UNIX_PATH_BYTES = 107
# librdkafka 2.12.1 (CONFIGURATION.md): socket.timeout.ms 10..300000, fetch.wait.max.ms
# 0..300000, auto.commit.interval.ms 0..86400000 (0 would switch committing off), and
# session.timeout.ms 1..3600000 but at most max.poll.interval.ms (default 300000, not set by
# Vector), or rd_kafka_new fails: "`max.poll.interval.ms`must be >= `session.timeout.ms`"
# (src/rdkafka_conf.c). Vector passes them as set in src/sources/kafka.rs create_consumer.
KAFKA_SOCKET_TIMEOUT_MS = (10, 300_000)
KAFKA_SESSION_TIMEOUT_MS = (1, 300_000)
KAFKA_FETCH_WAIT_MAX_MS = (0, 300_000)
KAFKA_COMMIT_INTERVAL_MS = (1, 86_400_000)
