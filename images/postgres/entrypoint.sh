#!/bin/sh
# Start PostgreSQL in the foreground, creating the cluster on first start.
# Why a script: the Debian package expects systemd and pg_ctlcluster; a
# container wants one foreground postgres that answers SIGINT (fast shutdown).
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "max_connections = 200" >>"$PGDATA/postgresql.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 30 start >/dev/null
    if [ "$POSTGRES_DB" != "postgres" ]; then
        createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
    fi
    pg_ctl -D "$PGDATA" -m fast -w -t 30 stop >/dev/null
    echo "rollgate-postgres: created cluster in $PGDATA with database $POSTGRES_DB" >&2
fi
exec postgres -D "$PGDATA"
