#!/usr/bin/env bash
# MedLedger beside PostgreSQL, measured in one run on this machine.
#
# Installs PostgreSQL from the system packages when it is missing, starts two throw-away
# clusters in a temporary directory on loopback ports:
#   - one server (the single-node counterpart of `bench ingest` and `bench fhir`);
#   - a primary with three synchronous standbys (the crash-fault-tolerant counterpart of the
#     four BFT validators of `bench cluster`);
# then runs `medledger bench all --postgres … --postgres-replicated …`, which prints the
# MedLedger / PostgreSQL ratios and writes them to target/bench/all.json. Everything it
# started is stopped and removed on exit, whatever happens.
#
# Usage: scripts/bench-baseline.sh [--quick] [other `medledger bench all` options]
# Reports go to target/bench/ under the current directory.
# MEDLEDGER_BIN=path uses that medledger binary instead of building the release one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Longest the standbys may take to stream from the primary before the run gives up.
readonly STANDBY_WAIT_SECONDS=60
readonly STANDBYS=3
# Same order of memory as the node's page cache (redb, 256 MiB by default).
readonly SHARED_BUFFERS=256MB

say() { echo "==> $*" >&2; }

postgres_bindir() {
    local bindir
    if command -v pg_config >/dev/null 2>&1; then
        bindir=$(pg_config --bindir)
        [[ -x "$bindir/initdb" ]] && { echo "$bindir"; return; }
    fi
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$bindir" && -x "$bindir/initdb" ]] && echo "$bindir"
}

install_postgres() {
    say "installing PostgreSQL from the system packages"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >/dev/null
}

BINDIR=$(postgres_bindir || true)
if [[ -z "$BINDIR" ]]; then
    install_postgres
    BINDIR=$(postgres_bindir)
fi

# PostgreSQL refuses to run as root: as root, run it as the `postgres` system user.
as_owner=()
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_owner=(runuser -u postgres --)
fi

WORK=$(mktemp -d /tmp/medledger-baseline-XXXXXX)
chmod 755 "$WORK"
[[ ${#as_owner[@]} -eq 0 ]] || chown postgres "$WORK"
CLUSTERS=()
cleanup() {
    local cluster
    for cluster in "${CLUSTERS[@]}"; do
        "${as_owner[@]}" "$BINDIR/pg_ctl" -D "$cluster" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# init_cluster DIR PORT [extra postgresql.conf lines...]
init_cluster() {
    local dir=$1 port=$2
    shift 2
    "${as_owner[@]}" "$BINDIR/initdb" -D "$dir" -U postgres --auth=trust >/dev/null
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$WORK'"
        echo "fsync = on"
        echo "synchronous_commit = on"
        echo "full_page_writes = on"
        echo "shared_buffers = $SHARED_BUFFERS"
        echo "max_connections = 64"
        printf '%s\n' "$@"
    } | "${as_owner[@]}" tee -a "$dir/postgresql.conf" >/dev/null
}

start_cluster() {
    local dir=$1
    "${as_owner[@]}" "$BINDIR/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    CLUSTERS+=("$dir")
}

say "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') in $WORK"
SINGLE_PORT=$(free_port)
init_cluster "$WORK/single" "$SINGLE_PORT"
start_cluster "$WORK/single"

PRIMARY_PORT=$(free_port)
names=$(seq -f 'standby%g' -s ', ' 1 "$STANDBYS")
init_cluster "$WORK/primary" "$PRIMARY_PORT" \
    "wal_level = replica" "max_wal_senders = 10" \
    "synchronous_standby_names = 'FIRST $STANDBYS ($names)'"
start_cluster "$WORK/primary"
for index in $(seq 1 "$STANDBYS"); do
    standby="$WORK/standby$index"
    "${as_owner[@]}" "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$standby" -R -X stream
    {
        echo "port = $(free_port)"
        echo "primary_conninfo = 'host=127.0.0.1 port=$PRIMARY_PORT user=postgres application_name=standby$index'"
    } | "${as_owner[@]}" tee -a "$standby/postgresql.auto.conf" >/dev/null
    start_cluster "$standby"
done

deadline=$((SECONDS + STANDBY_WAIT_SECONDS))
until [[ $("$BINDIR/psql" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc \
    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") -eq $STANDBYS ]]; do
    if ((SECONDS > deadline)); then
        echo "the standbys did not become synchronous within ${STANDBY_WAIT_SECONDS} s" >&2
        exit 1
    fi
    sleep 0.5
done
say "primary on port $PRIMARY_PORT with $STANDBYS synchronous standbys; single server on port $SINGLE_PORT"

MEDLEDGER=${MEDLEDGER_BIN:-}
if [[ -z "$MEDLEDGER" ]]; then
    say "building the release binary"
    cargo build --release --locked -p medledger-cli --manifest-path "$ROOT/Cargo.toml"
    MEDLEDGER=$ROOT/target/release/medledger
fi

"$MEDLEDGER" bench all \
    --postgres "host=127.0.0.1 port=$SINGLE_PORT user=postgres dbname=postgres" \
    --postgres-replicated "host=127.0.0.1 port=$PRIMARY_PORT user=postgres dbname=postgres" \
    "$@"
