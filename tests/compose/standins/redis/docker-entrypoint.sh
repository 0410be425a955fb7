#!/bin/sh
# The official redis image's entrypoint: redis-server started as root drops to the redis user
# (owning /data first); anything else runs as given.
set -e
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
exec "$@"
