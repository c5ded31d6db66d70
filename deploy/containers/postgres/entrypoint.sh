#!/bin/sh
# On an empty data directory: make the cluster with POSTGRES_USER as its owner and
# POSTGRES_PASSWORD as their password (password logins over the network, trust on the local
# socket), create POSTGRES_DB, and run /docker-entrypoint-initdb.d/*.sql on a server that
# listens on its socket only, as the official image does. Then the server, as PID 1.
set -eu

initialise() {
    : "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$password_file"
    printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    pg_ctl --wait --options="-c listen_addresses=''" start
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
            --command="CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        psql -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --file="$script"
    done
    pg_ctl --wait --mode=fast stop
}

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
fi
exec "$@"
