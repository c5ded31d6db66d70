#!/bin/sh
# Each /etc/nginx/templates/NAME.template becomes /etc/nginx/conf.d/NAME with the environment's
# variables filled in, and only those: nginx's own $variables stay as they are. The official
# image does the same before starting nginx.
set -eu
variables="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')"
for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue
    name="$(basename "$template" .template)"
    envsubst "$variables" <"$template" >"/etc/nginx/conf.d/$name"
done
exec "$@"
