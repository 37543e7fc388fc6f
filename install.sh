#!/bin/sh
# LogPulse agent installer.
#
#   curl -fsSL https://get.logpulse.io | sudo sh
#   curl -fsSL https://get.logpulse.io | sudo LOGPULSE_VERSION=v0.4.2 sh
#   curl -fsSL https://get.logpulse.io | sudo LOGPULSE_API_URL=https://api.logpulse.io \
#       LOGPULSE_ENROL_TOKEN=EBT_... sh
#
# Downloads the release tarball and SHA256SUMS into a temporary directory, verifies the SHA-256,
# unpacks it beside the releases (not in /tmp, which may be noexec) and runs the new build once;
# only then does it touch the system: /opt/logpulse-agent/versions/<v>, an
# atomic switch of /opt/logpulse-agent/current (the previous release is kept for rollback), the
# /usr/bin/logpulse-agent link, the logpulse user, the directories of the file layout, the
# systemd units. Then: an enrolled host is restarted (the upgrade path); with LOGPULSE_API_URL and
# LOGPULSE_ENROL_TOKEN the host is enrolled and the agent started; otherwise it prints how to
# enrol. Re-running it is harmless. Any failure before the system is touched (not root, no
# curl, unsupported architecture, HTTP error, checksum mismatch, broken bundle) prints one
# line and exits non-zero with the system exactly as it was. A new release that does not start
# under systemd is rolled back to the one it replaced, and one that starts is on probation
# (systemd/logpulse-agent-probation): it is rolled back unless its agent reaches the control
# plane within the window, and whenever it keeps restarting.
#
# Environment:
#   LOGPULSE_VERSION        release to install: vX.Y.Z (or X.Y.Z) | latest        [latest]
#   LOGPULSE_DOWNLOAD_BASE  where releases live: <base>/latest holds the latest version,
#                           <base>/v<X.Y.Z>/ the tarballs and SHA256SUMS
#                                                           [https://get.logpulse.io/releases]
#   LOGPULSE_INSTALL_URL    where this script is served; recorded for remote upgrades
#                                                                    [https://get.logpulse.io]
#   LOGPULSE_ROOT           install under this root instead of / (packagers, tests). Nothing
#                           outside it is changed and systemd is not called; the logpulse user
#                           is created in ROOT/etc/passwd when that file exists.         [/]
#   LOGPULSE_ARCH           architecture to install instead of `uname -m`        [detected]
#   LOGPULSE_NO_SYSTEMD=1   write the units but never call systemctl
#   LOGPULSE_API_URL, LOGPULSE_ENROL_TOKEN, LOGPULSE_GROUP
#                           enrol (as the logpulse user) and start the agent
#   LOGPULSE_ALLOW_INSECURE_HTTP=1
#                           allow plain http:// downloads from a non-loopback host (unsafe)
#   LOGPULSE_UPGRADE_PROBATION, LOGPULSE_UPGRADE_PROBATION_RESTARTS
#                           seconds a switched-to release is on probation (0: none) and the
#                           restarts that end it early; else from install.env      [600, 5]
#
# /opt/logpulse-agent/install.env keeps where upgrades come from; the installer rewrites its
# own three lines there on every run and keeps every other line (the operator's settings).

# The whole script is one brace group, closed on its last line: the shell parses all of it before
# running any of it, so a download cut off mid-way (curl | sh) is a syntax error, not half an
# install.
{
set -eu
umask 022
cd /

PROG="logpulse-agent installer"
AGENT_USER=logpulse
VERSION_ERE='^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$'
UNITS="logpulse-agent.service logpulse-agent-upgrade.service logpulse-agent-upgrade.path"
# Shipped by releases that promote themselves: only those are put on probation.
PROBATION_UNITS="logpulse-agent-probation.service logpulse-agent-probation.timer"
WATCHER=logpulse-agent-probation

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
fail() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

TMP=""
UNPACK=""
MADE=""  # directories this run created for UNPACK, removed again if it fails
cleanup() {
    status=$?
    if [ -n "$TMP" ]; then
        rm -rf "$TMP"
    fi
    if [ -n "$UNPACK" ]; then
        rm -rf "$UNPACK"
    fi
    if [ "$status" != 0 ]; then
        for dir in $MADE; do
            rmdir "$dir" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- settings -------------------------------------------------------------------------------

VERSION=${LOGPULSE_VERSION:-latest}
BASE=${LOGPULSE_DOWNLOAD_BASE:-https://get.logpulse.io/releases}
BASE=${BASE%/}
INSTALL_URL=${LOGPULSE_INSTALL_URL:-https://get.logpulse.io}
ROOT=${LOGPULSE_ROOT:-/}
ROOT=${ROOT%/}  # "" for /, so "$ROOT/etc" is always right
NO_SYSTEMD=${LOGPULSE_NO_SYSTEMD:-0}
ALLOW_HTTP=${LOGPULSE_ALLOW_INSECURE_HTTP:-0}

OPT=$ROOT/opt/logpulse-agent
ETC=$ROOT/etc/logpulse-agent
STATE=$ROOT/var/lib/logpulse-agent
LOGS=$ROOT/var/log/logpulse-agent
UNIT_DIR=$ROOT/etc/systemd/system

# is_version STRING: true when STRING is strictly [v]X.Y.Z[-pre][+build] on one line.
is_version() {
    case $1 in
        "" | *[!0-9A-Za-z.+-]*) return 1 ;;
    esac
    [ "${#1}" -le 64 ] && printf '%s\n' "$1" | grep -Eq "$VERSION_ERE"
}

# is_loopback_url URL: true for http(s)://localhost, 127.x.y.z or [::1], with an optional port
# and nothing else in the authority (http://127.0.0.1@evil.example/ is not loopback).
is_loopback_url() {
    authority=${1#*://}
    authority=${authority%%[/?#]*}
    case $authority in
        \[::1\] | \[::1\]:*) port=${authority#"[::1]"} ;;
        *:*) port=:${authority##*:} ;;
        *) port="" ;;
    esac
    host=${authority%"$port"}
    case $port in
        "" | :[0-9]*) ;;
        *) return 1 ;;
    esac
    case ${port#:} in
        *[!0-9]*) return 1 ;;
    esac
    case $host in
        localhost | "[::1]") return 0 ;;
        127.*.*.*) case $host in *[!0-9.]*) return 1 ;; esac ;;
        *) return 1 ;;
    esac
}

# check_url NAME URL: https, or http to a loopback host, or http with the explicit opt-in.
check_url() {
    case $2 in
        https://*) return 0 ;;
        http://*)
            if is_loopback_url "$2"; then
                return 0
            fi
            if [ "$ALLOW_HTTP" = 1 ]; then
                warn "$1 $2 is plain http: the download can be read and altered in transit"
                return 0
            fi
            fail "$1 $2 is plain http to a non-loopback host; use https:// (or set LOGPULSE_ALLOW_INSECURE_HTTP=1)"
            ;;
        *) fail "$1 '$2' is not an http(s):// URL" ;;
    esac
}

# --- preflight: nothing below this line changes the system until "install" ----------------

if [ "$(id -u)" != 0 ]; then
    fail "must run as root (try: curl -fsSL $INSTALL_URL | sudo sh)"
fi

if [ "$VERSION" != latest ] && ! is_version "$VERSION"; then
    fail "LOGPULSE_VERSION '$VERSION' is not a version such as v0.4.2 (or 'latest')"
fi

case ${LOGPULSE_ARCH:-$(uname -m)} in
    x86_64 | amd64) ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) fail "unsupported architecture '${LOGPULSE_ARCH:-$(uname -m)}': releases exist for x86_64 (amd64) and aarch64 (arm64)" ;;
esac

# curl only: wget cannot be held to https on redirects, nor to a maximum size.
if ! command -v curl >/dev/null 2>&1; then
    fail "curl is required (wget is not used: it follows redirects from https to http); install curl and run the installer again"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
elif command -v openssl >/dev/null 2>&1; then
    sha256() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
else
    fail "no SHA-256 tool found (sha256sum, shasum or openssl); cannot verify the download"
fi

for tool in tar gzip mktemp; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is required but not installed"
done

# Creating the agent's user must not fail half-way through the install: check the tools now.
if [ -z "$ROOT" ] && ! id "$AGENT_USER" >/dev/null 2>&1 \
    && ! command -v useradd >/dev/null 2>&1 && ! command -v adduser >/dev/null 2>&1; then
    fail "cannot create the $AGENT_USER user: neither useradd nor adduser is installed"
fi
if [ -n "$ROOT" ] && [ -f "$ROOT/etc/passwd" ] && ! grep -q "^$AGENT_USER:" "$ROOT/etc/passwd" \
    && ! command -v useradd >/dev/null 2>&1; then
    fail "cannot create the $AGENT_USER user in $ROOT/etc/passwd: useradd is not installed"
fi

check_url "download base" "$BASE"
check_url "install URL" "$INSTALL_URL"

# operator_setting NAME: NAME from the environment, else its last line in install.env (the
# operator's file: see "install.env" below), else nothing.
operator_setting() {
    eval "value=\${$1:-}"
    if [ -z "$value" ] && [ -f "$OPT/install.env" ]; then
        value=$(sed -n "s/^[[:space:]]*$1=//p" "$OPT/install.env" | tail -n 1 | tr -d "\"' \t\r")
    fi
    printf '%s\n' "$value"
}
PROBATION=$(operator_setting LOGPULSE_UPGRADE_PROBATION)
PROBATION=${PROBATION:-600}
case $PROBATION in
    *[!0-9]* | "" | 0?* | ??????*) bad=1 ;;  # not digits, a leading zero (octal), too long
    *) bad=$((PROBATION != 0 && (PROBATION < 30 || PROBATION > 86400))) ;;
esac
[ "$bad" = 0 ] || fail "LOGPULSE_UPGRADE_PROBATION '$PROBATION' is not a number of seconds from 30 to 86400 (or 0: no probation)"
MAX_RESTARTS=$(operator_setting LOGPULSE_UPGRADE_PROBATION_RESTARTS)
MAX_RESTARTS=${MAX_RESTARTS:-5}
case $MAX_RESTARTS in
    *[!0-9]* | "" | 0* | ????*) bad=1 ;;
    *) bad=$((MAX_RESTARTS > 100)) ;;
esac
[ "$bad" = 0 ] || fail "LOGPULSE_UPGRADE_PROBATION_RESTARTS '$MAX_RESTARTS' is not a number from 1 to 100"

case $ROOT in
    "" | /*) ;;
    *) fail "LOGPULSE_ROOT '$ROOT' must be an absolute path" ;;
esac
if [ -n "$ROOT" ] && [ ! -d "$ROOT" ]; then
    fail "LOGPULSE_ROOT '$ROOT' is not a directory"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/logpulse-install.XXXXXX") || fail "cannot create a temporary directory"

# download URL DEST: fetch URL into DEST; one clear line on any failure.
download() {
    case $1 in
        https://*) proto='=https' ;;
        *) proto='=http,https' ;;
    esac
    if ! code=$(curl -sSL --proto "$proto" --proto-redir "$proto" --connect-timeout 20 \
        --retry 2 -o "$2" -w '%{http_code}' "$1" 2>"$TMP/download.err"); then
        fail "cannot download $1: $(head -n 1 "$TMP/download.err")"
    fi
    case $code in
        2??) ;;
        *) fail "cannot download $1: HTTP $code" ;;
    esac
}

if [ "$VERSION" = latest ]; then
    download "$BASE/latest" "$TMP/latest"
    VERSION=$(head -n 1 "$TMP/latest" | tr -d ' \t\r')
    is_version "$VERSION" || fail "$BASE/latest does not name a version (got '$(head -c 40 "$TMP/latest")')"
fi
VERSION=${VERSION#v}
NAME=logpulse-agent-$VERSION-linux-$ARCH
TARBALL=$NAME.tar.gz
RELEASE_URL=$BASE/v$VERSION

say "installing logpulse-agent $VERSION ($ARCH) from $RELEASE_URL"
download "$RELEASE_URL/SHA256SUMS" "$TMP/SHA256SUMS"
download "$RELEASE_URL/$TARBALL" "$TMP/$TARBALL"

expected=$(awk -v name="$TARBALL" '$2 == name || $2 == "*" name { print $1; exit }' "$TMP/SHA256SUMS")
[ -n "$expected" ] || fail "$RELEASE_URL/SHA256SUMS has no entry for $TARBALL"
actual=$(sha256 "$TMP/$TARBALL")
if [ "$actual" != "$expected" ]; then
    fail "checksum mismatch for $TARBALL: expected $expected, got $actual; nothing was installed"
fi
say "verified SHA-256 of $TARBALL"

# Unpacked next to the releases, not in $TMP: /tmp is often mounted noexec (CIS benchmarks, the
# upgrade service's private /tmp alike), and the new build must run once before anything is
# switched. Directories made for this are removed again if the run fails.
for dir in "$ROOT/opt" "$OPT" "$OPT/versions"; do
    if [ ! -d "$dir" ]; then
        mkdir -m 0755 "$dir" || fail "cannot create $dir"
        MADE="$dir $MADE"
    fi
done
UNPACK=$(mktemp -d "$OPT/versions/.unpack-$VERSION.XXXXXX") || fail "cannot create a directory in $OPT/versions"
tar -xzf "$TMP/$TARBALL" -C "$UNPACK" --no-same-owner --no-same-permissions \
    || fail "cannot unpack $TARBALL"
NEW=$UNPACK/logpulse-agent-$VERSION
[ -x "$NEW/logpulse-agent" ] || fail "$TARBALL is not a logpulse-agent release (no logpulse-agent-$VERSION/logpulse-agent)"
for unit in $UNITS logpulse-agent-upgrade; do
    [ -f "$NEW/systemd/$unit" ] || fail "$TARBALL is incomplete: systemd/$unit is missing"
done
SHIPS_WATCHER=1
for file in $PROBATION_UNITS $WATCHER; do
    [ -f "$NEW/systemd/$file" ] || SHIPS_WATCHER=0
done
if [ -z "${LOGPULSE_ARCH:-}" ]; then
    # Before switching anything: the new build must run on this host.
    got=$("$NEW/logpulse-agent" --version 2>&1) || fail "the $VERSION build does not run on this host: $got"
fi

# --- install ------------------------------------------------------------------------------

# atomic_link TARGET LINK: point LINK at TARGET with one rename (readers never see it missing).
atomic_link() {
    ln -s "$1" "$2.tmp.$$"
    mv -T "$2.tmp.$$" "$2" || {
        rm -f "$2.tmp.$$"
        fail "cannot replace $2"
    }
}

# atomic_copy SRC DEST MODE: replace DEST with a copy of SRC (a running reader keeps the old).
atomic_copy() {
    cp "$1" "$2.tmp.$$"
    chmod "$3" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}

# ensure_dir PATH OWNER:GROUP MODE
ensure_dir() {
    [ -d "$1" ] || mkdir -p "$1"
    chown "$2" "$1"
    chmod "$3" "$1"
}

mkdir -p "$OPT/versions"
chmod 0755 "$OPT" "$OPT/versions"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OPT/.install.lock"
    flock -w 600 9 || fail "another installation is still running (lock $OPT/.install.lock)"
fi

# The logpulse user. On / it is a real system user; under LOGPULSE_ROOT it goes into the root's
# own passwd files (a rootfs or image being built), and is skipped for a bare staging tree.
AGENT_UID="" AGENT_GID=""
if [ -z "$ROOT" ]; then
    if ! id "$AGENT_USER" >/dev/null 2>&1; then
        nologin=/usr/sbin/nologin
        [ -x "$nologin" ] || nologin=/sbin/nologin
        if command -v useradd >/dev/null 2>&1; then
            useradd --system --user-group --home-dir /var/lib/logpulse-agent --no-create-home \
                --shell "$nologin" --comment "LogPulse agent" "$AGENT_USER" \
                || fail "cannot create the $AGENT_USER user (useradd failed)"
        else
            # BusyBox (Alpine and friends).
            { addgroup -S "$AGENT_USER" && adduser -S -D -H -h /var/lib/logpulse-agent \
                -s "$nologin" -G "$AGENT_USER" -g "LogPulse agent" "$AGENT_USER"; } \
                || fail "cannot create the $AGENT_USER user (adduser failed)"
        fi
        say "created system user $AGENT_USER"
    fi
    AGENT_UID=$(id -u "$AGENT_USER")
    AGENT_GID=$(id -g "$AGENT_USER")
elif [ -f "$ROOT/etc/passwd" ]; then
    if ! grep -q "^$AGENT_USER:" "$ROOT/etc/passwd"; then
        useradd --prefix "$ROOT" --system --user-group --home-dir /var/lib/logpulse-agent \
            --no-create-home --shell /usr/sbin/nologin --comment "LogPulse agent" "$AGENT_USER" \
            || fail "cannot create the $AGENT_USER user in $ROOT/etc/passwd"
        say "created system user $AGENT_USER in $ROOT/etc/passwd"
    fi
    AGENT_UID=$(awk -F: -v u="$AGENT_USER" '$1 == u { print $3 }' "$ROOT/etc/passwd")
    AGENT_GID=$(awk -F: -v u="$AGENT_USER" '$1 == u { print $4 }' "$ROOT/etc/passwd")
else
    say "note: $ROOT/etc/passwd does not exist, so no $AGENT_USER user was created and its files are owned by root; create the user and chown them at install time"
fi
OWNER=${AGENT_UID:-0}:${AGENT_GID:-0}
GROUP_OWNER=0:${AGENT_GID:-0}

# The release: unpacked next to the others, then renamed into place. An identical release that
# is already there is kept as it is (it may be the running one).
DEST=$OPT/versions/$VERSION
tar_sha=$actual
if [ -d "$DEST" ] && [ "$(cat "$DEST/.release-sha256" 2>/dev/null)" = "$tar_sha" ]; then
    say "release $VERSION is already unpacked in $DEST"
else
    staging=$OPT/versions/.incoming-$VERSION.$$
    rm -rf "$staging"
    cp -R "$NEW" "$staging"
    printf '%s\n' "$tar_sha" >"$staging/.release-sha256"
    chown -R 0:0 "$staging"
    chmod -R go-w "$staging"
    chmod 0755 "$staging"
    if [ -e "$DEST" ]; then
        mv "$DEST" "$OPT/versions/.replaced-$VERSION.$$"
    fi
    mv "$staging" "$DEST"
fi

old=""
if [ -L "$OPT/current" ]; then
    old=$(readlink "$OPT/current")
fi

# --- probation (SPEC 11.4): set up before the switch, so no switch is ever unwatched -----------

SYSTEMD_LIVE=0
if [ -z "$ROOT" ] && [ "$NO_SYSTEMD" != 1 ] && [ -d /run/systemd/system ] \
    && command -v systemctl >/dev/null 2>&1; then
    SYSTEMD_LIVE=1
fi
ENROLLED=0
if [ -f "$STATE/identity.json" ] && [ -f "$ETC/agent-token" ]; then
    ENROLLED=1
fi

# bounded SECONDS CMD...: CMD, cut off after SECONDS where `timeout` exists (a file the agent
# made a FIFO, or a start that never ends, must not hold the installer and its lock).
bounded() {
    if command -v timeout >/dev/null 2>&1; then
        timeout "$@"
    else
        shift
        "$@"
    fi
}

# daemon_pid: the pid of the running `logpulse-agent run` that the agent's status.json names
# (without systemd, that process is restarted with a signal). Only digits are taken from the
# agent's file, and only a process that is that command counts.
daemon_pid() {
    pid=$(bounded 5 sed -n 's/^ *"pid": *\([0-9][0-9]*\),*$/\1/p' "$STATE/status.json" \
        2>/dev/null | head -n 1 || true)
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
        case $(tr '\0' ' ' <"/proc/$pid/cmdline") in
            *logpulse-agent*" run"*) printf '%s\n' "$pid" ;;
        esac
    fi
}
DAEMON_PID=""
if [ -z "$ROOT" ] && [ "$SYSTEMD_LIVE" = 0 ] && [ "$ENROLLED" = 1 ]; then
    DAEMON_PID=$(daemon_pid)
fi

# GOOD: the release to roll back to. The one `current` points at, unless that one is itself on
# probation: then the release its probation would return to (the last one that passed).
GOOD=$old
if [ -f "$OPT/probation" ]; then
    trial=$(sed -n 's/^version=//p' "$OPT/probation" | head -n 1)
    known=$(sed -n 's/^previous=//p' "$OPT/probation" | head -n 1)
    if [ "$old" = "versions/$trial" ] && is_version "$known" && [ -d "$OPT/versions/$known" ] \
        && [ "$known" != "$VERSION" ]; then
        GOOD=versions/$known
    fi
fi

PROBATION_MODE=""
if [ "$PROBATION" != 0 ] && [ "$SHIPS_WATCHER" = 1 ] && [ "$ENROLLED" = 1 ] \
    && [ "$old" != "versions/$VERSION" ] && [ -n "$GOOD" ] && [ -d "$OPT/$GOOD" ]; then
    if [ "$SYSTEMD_LIVE" = 1 ]; then
        PROBATION_MODE=systemd
    elif [ -n "$DAEMON_PID" ]; then
        PROBATION_MODE=detached
    fi
fi
if [ -n "$PROBATION_MODE" ]; then
    atomic_copy "$DEST/systemd/$WATCHER" "$OPT/$WATCHER" 0755
    if [ "$PROBATION_MODE" = systemd ]; then
        watch_uid=${AGENT_UID:-0} watch_gid=${AGENT_GID:-0}
        mkdir -p "$UNIT_DIR"
        for unit in $PROBATION_UNITS; do
            atomic_copy "$DEST/systemd/$unit" "$UNIT_DIR/$unit" 0644
        done
        systemctl daemon-reload
    else
        # Whoever runs the agent here (often root, in a container) owns its files.
        watch_uid=$(awk '/^Uid:/ { print $2 }' "/proc/$DAEMON_PID/status")
        watch_gid=$(awk '/^Gid:/ { print $2 }' "/proc/$DAEMON_PID/status")
    fi
    sh "$OPT/$WATCHER" begin "$VERSION" "${GOOD#versions/}" "$PROBATION" "$MAX_RESTARTS" \
        "$PROBATION_MODE" "$watch_uid" "$watch_gid" "$DAEMON_PID" \
        || fail "cannot start the probation of $VERSION; nothing was switched"
    if [ "$PROBATION_MODE" = systemd ]; then
        systemctl enable --now --quiet logpulse-agent-probation.timer
    fi
elif [ -f "$OPT/probation" ] && [ "$old" != "versions/$VERSION" ]; then
    # The release on probation is replaced by one that is not: its probation is over.
    rm -f "$OPT/probation" "$STATE/upgrade-probation" "$STATE/upgrade-promoted"
    if [ "$SYSTEMD_LIVE" = 1 ]; then
        systemctl stop logpulse-agent-probation.timer 2>/dev/null || true
    fi
    say "the probation of ${old#versions/} ended: it is replaced by $VERSION"
fi

# current → the new release, previous → the release to roll back to (GOOD, kept).
if [ -n "$GOOD" ] && [ "$GOOD" != "versions/$VERSION" ] && [ -d "$OPT/$GOOD" ]; then
    atomic_link "$GOOD" "$OPT/previous"
fi
if [ "$old" != "versions/$VERSION" ]; then
    atomic_link "versions/$VERSION" "$OPT/current"
    say "switched $OPT/current to $VERSION${old:+ (was ${old#versions/})}"
fi
previous=""
if [ -L "$OPT/previous" ]; then
    previous=$(readlink "$OPT/previous")
fi
# A killed run's unpack directory goes once it is an hour old; a younger one may belong to a
# run that is unpacking right now (that happens before the lock is taken).
find "$OPT/versions" -mindepth 1 -maxdepth 1 -name '.unpack-*' -mmin +60 -exec rm -rf {} +
for dir in "$OPT"/versions/* "$OPT"/versions/.incoming-* "$OPT"/versions/.replaced-*; do
    if [ ! -e "$dir" ]; then
        continue
    fi
    case ${dir#"$OPT"/} in
        "versions/$VERSION" | "$previous") ;;
        *) rm -rf "$dir" ;;
    esac
done
if [ -n "$previous" ] && [ ! -d "$OPT/$previous" ]; then
    rm -f "$OPT/previous"
fi

# Vector rolls forward with the release that bundles it; an operator's own directory is left.
if [ -d "$OPT/vector" ] && [ ! -L "$OPT/vector" ]; then
    warn "$OPT/vector is a directory of its own; leaving it (the release's Vector is in $OPT/current/vector)"
else
    atomic_link current/vector "$OPT/vector"
fi

mkdir -p "$ROOT/usr/bin"
atomic_link /opt/logpulse-agent/current/logpulse-agent "$ROOT/usr/bin/logpulse-agent"

# repair_root_file PATH: root:<agent group> 0640 for a root-owned regular file in $ETC. The agent
# can write into $ETC, so anything else there (a symlink or a hard link to /etc/shadow, a file
# the agent made) is left alone with a warning: chown and chmod as root never follow its links.
# Root's own files cannot be swapped under us: the directory is sticky.
repair_root_file() {
    if [ -n "$(find "$1" -maxdepth 0 -type f -user 0 -links 1 2>/dev/null)" ]; then
        chown -h "$GROUP_OWNER" "$1"
        chmod 0640 "$1"
    else
        warn "$1 is not a root-owned regular file with one link; leaving it as it is"
    fi
}

# Directories and modes (SPEC section 2). The config directory is group-writable for the agent,
# which stores agent-token there, and sticky, so the agent can never replace or delete root's
# files in it (agent.yaml, bootstrap-token).
ensure_dir "$ETC" "$GROUP_OWNER" 1770
ensure_dir "$STATE" "$OWNER" 0750
ensure_dir "$LOGS" "$OWNER" 0750
if [ ! -e "$ETC/agent.yaml" ]; then
    cat >"$ETC/agent.yaml.tmp.$$" <<'EOF'
# LogPulse agent settings (see the README's settings table). Environment variables
# (LOGPULSE_*) and command-line flags override these. Examples:
# api_url: https://api.logpulse.io     # set by 'logpulse-agent enrol'
# poll_interval: 10
# heartbeat_interval: 30
# ca_bundle: /etc/ssl/certs/ca-certificates.crt
EOF
    chown "$GROUP_OWNER" "$ETC/agent.yaml.tmp.$$"
    chmod 0640 "$ETC/agent.yaml.tmp.$$"
    mv "$ETC/agent.yaml.tmp.$$" "$ETC/agent.yaml"
else
    repair_root_file "$ETC/agent.yaml"
fi
if [ -e "$ETC/bootstrap-token" ] || [ -L "$ETC/bootstrap-token" ]; then
    repair_root_file "$ETC/bootstrap-token"
fi
# agent-token is the agent's own file (it writes it 0600); root never touches it by name.

# Where remote upgrades fetch the installer and releases from. Root's file, read only by the
# root upgrade service: the agent can ask for a version, never for a source. The installer owns
# its header and three lines; every other line is the operator's and is kept as it is.
cat >"$TMP/install.env.head" <<'EOF'
# Written by the logpulse-agent installer; read by logpulse-agent-upgrade.service.
# Each run rewrites these lines and the three below; every other line is yours and is kept,
# e.g. LOGPULSE_UPGRADE_PROBATION=600, LOGPULSE_UPGRADE_PROBATION_RESTARTS=5,
# LOGPULSE_ALLOW_DOWNGRADE=1, HTTPS_PROXY=... (see the README, "Upgrade").
EOF
{
    cat "$TMP/install.env.head"
    printf 'LOGPULSE_INSTALL_URL=%s\nLOGPULSE_DOWNLOAD_BASE=%s\nLOGPULSE_ALLOW_INSECURE_HTTP=%s\n' \
        "$INSTALL_URL" "$BASE" "$ALLOW_HTTP"
    if [ -f "$OPT/install.env" ]; then
        grep -vxF -f "$TMP/install.env.head" "$OPT/install.env" \
            | grep -vE '^[[:space:]]*LOGPULSE_(INSTALL_URL|DOWNLOAD_BASE|ALLOW_INSECURE_HTTP)=' \
            || true
    fi
} >"$TMP/install.env"
atomic_copy "$TMP/install.env" "$OPT/install.env" 0644

# systemd units, from the release (they belong to the agent version that needs them).
mkdir -p "$UNIT_DIR"
ENABLE=logpulse-agent-upgrade.path
for unit in $UNITS $PROBATION_UNITS; do
    if [ -f "$NEW/systemd/$unit" ]; then
        atomic_copy "$NEW/systemd/$unit" "$UNIT_DIR/$unit" 0644
    fi
done
# The probation watcher runs from a copy outside the releases (a rollback half-way must find
# it); its timer is enabled for good (it only runs while a record exists): a reboot resumes it.
if [ "$SHIPS_WATCHER" = 1 ]; then
    atomic_copy "$NEW/systemd/$WATCHER" "$OPT/$WATCHER" 0755
fi
if [ -f "$UNIT_DIR/logpulse-agent-probation.timer" ]; then
    ENABLE="$ENABLE logpulse-agent-probation.timer"
fi

# --- start ----------------------------------------------------------------------------------

if [ "$SYSTEMD_LIVE" = 1 ]; then
    systemctl daemon-reload
    systemctl enable --now --quiet logpulse-agent-upgrade.path
    # shellcheck disable=SC2086 # a list of unit names
    systemctl enable --quiet $ENABLE
elif [ "$NO_SYSTEMD" != 1 ] && command -v systemctl >/dev/null 2>&1; then
    # Offline: only the enablement symlinks, inside the root.
    # shellcheck disable=SC2086 # a list of unit names
    systemctl --root="${ROOT:-/}" enable --quiet $ENABLE >/dev/null 2>&1 \
        || warn "could not enable $ENABLE under ${ROOT:-/}"
fi

AGENT_BIN=$OPT/current/logpulse-agent

start_agent() {
    if [ "$SYSTEMD_LIVE" = 1 ]; then
        systemctl enable --quiet logpulse-agent.service
        systemctl restart logpulse-agent.service
        say "logpulse-agent $VERSION is running (systemctl status logpulse-agent)"
    else
        say "systemd is not managed by this run; start the agent with: systemctl enable --now logpulse-agent"
    fi
}

# restart_or_roll_back: restart the agent on the new release; if it does not come up within 5
# minutes (a build that answers --version but cannot run here, units it brought that do not
# work, a start that hangs), point current back at GOOD, put that release's units back and
# start it, so a bad release never leaves the host without its agent. On probation the watcher
# does that rollback, so the probation ends with the reason the old agent reports.
restart_or_roll_back() {
    if bounded 300 systemctl restart logpulse-agent.service; then
        return 0
    fi
    why="logpulse-agent $VERSION did not start (journalctl -u logpulse-agent)"
    if [ "$PROBATION_MODE" = systemd ]; then
        sh "$OPT/$WATCHER" rollback "$why" || true
        if systemctl is-active --quiet logpulse-agent.service; then
            fail "$why; rolled back to ${GOOD#versions/}, which is running"
        fi
    elif [ -n "$GOOD" ] && [ "$GOOD" != "versions/$VERSION" ] && [ -d "$OPT/$GOOD" ]; then
        atomic_link "$GOOD" "$OPT/current"
        for unit in $UNITS $PROBATION_UNITS; do
            if [ -f "$OPT/$GOOD/systemd/$unit" ]; then
                atomic_copy "$OPT/$GOOD/systemd/$unit" "$UNIT_DIR/$unit" 0644
            fi
        done
        systemctl daemon-reload
        if bounded 300 systemctl restart logpulse-agent.service; then
            fail "$why; rolled back to ${GOOD#versions/}, which is running"
        fi
    else
        fail "logpulse-agent $VERSION is installed but did not start (journalctl -u logpulse-agent)"
    fi
    fail "logpulse-agent $VERSION did not start, and neither did ${GOOD#versions/} after rolling back (journalctl -u logpulse-agent)"
}

# restart_detached: without systemd, stop the running agent (SIGTERM, as `systemctl restart`
# would) for its supervisor to start the new release; on probation the watcher goes on in the
# background, in its own session, without the installer's lock.
restart_detached() {
    if [ "$PROBATION_MODE" = detached ]; then
        set -- env -i "PATH=$PATH" sh "$OPT/$WATCHER" watch
        if command -v setsid >/dev/null 2>&1; then
            set -- setsid "$@"
        fi
        "$@" </dev/null >/dev/null 2>&1 9>&- &
    fi
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
}

if [ "$ENROLLED" = 1 ]; then
    if [ "$SYSTEMD_LIVE" = 1 ]; then
        restart_or_roll_back
        say "logpulse-agent $VERSION installed; the enrolled agent was restarted${PROBATION_MODE:+ and is on probation for $PROBATION s}"
    elif [ -n "$DAEMON_PID" ]; then
        restart_detached
        say "logpulse-agent $VERSION installed; the running agent (pid $DAEMON_PID) was stopped for its supervisor to start it again"
    else
        say "logpulse-agent $VERSION installed; restart the agent to run it: systemctl restart logpulse-agent"
    fi
elif [ -n "${LOGPULSE_API_URL:-}" ] && [ -n "${LOGPULSE_ENROL_TOKEN:-}" ]; then
    say "enrolling with $LOGPULSE_API_URL"
    set -- enrol --api-url "$LOGPULSE_API_URL" --config "$ETC/agent.yaml" --config-dir "$ETC" \
        --state-dir "$STATE" --log-dir "$LOGS"
    if [ -n "${LOGPULSE_GROUP:-}" ]; then
        set -- "$@" --group "$LOGPULSE_GROUP"
    fi
    if [ -n "$AGENT_UID" ] && command -v setpriv >/dev/null 2>&1; then
        # As the agent's user, so everything enrol writes is the agent's (token included).
        setpriv --reuid="$AGENT_UID" --regid="$AGENT_GID" --clear-groups -- "$AGENT_BIN" "$@" \
            || fail "logpulse-agent $VERSION is installed, but enrolment failed (see above); fix it and run: sudo -u $AGENT_USER logpulse-agent enrol --api-url URL --token EBT_..."
    else
        "$AGENT_BIN" "$@" || fail "logpulse-agent $VERSION is installed, but enrolment failed (see above)"
        chown -h "$OWNER" "$ETC/agent-token" 2>/dev/null || true
        find "$STATE" -user 0 ! -type l -exec chown -h "$OWNER" {} + 2>/dev/null || true
    fi
    start_agent
elif [ -f "$ETC/bootstrap-token" ] && grep -q '^api_url:' "$ETC/agent.yaml"; then
    say "a bootstrap token was provisioned; the agent enrols itself when it starts"
    start_agent
else
    cat <<EOF
$PROG: logpulse-agent $VERSION is installed. Enrol this host, then start the agent:

    sudo -u $AGENT_USER logpulse-agent enrol --api-url https://api.logpulse.io --token EBT_<token>
    sudo systemctl enable --now logpulse-agent

(or re-run this installer with LOGPULSE_API_URL and LOGPULSE_ENROL_TOKEN set)
EOF
fi
}
