#!/bin/sh
# Whatever arguments compose gives redis-server, protected mode goes off: without a password
# it would refuse every client from another container.
set -eu
if [ "${1:-}" = redis-server ]; then
    set -- "$@" --protected-mode no
fi
exec "$@"
