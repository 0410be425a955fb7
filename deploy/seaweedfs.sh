#!/bin/sh
# The local S3 server of docker-compose.yaml (SeaweedFS), run inside its image:
#   seaweedfs.sh server   write the S3 identities from the environment, then run SeaweedFS's master,
#                         volume server, filer and S3 gateway (port 9000) in one process
#   seaweedfs.sh bucket   create S3_BUCKET when it is missing (the s3-init service)
# Identities: S3_ADMIN_* may do everything (for operators); S3_ACCESS_KEY/S3_SECRET_KEY, the key
# Airflow uses, may only read, write, list and tag objects in S3_BUCKET. The secrets come from
# the environment (.env via compose) and are written to a file only this container can read.
set -eu
case "${1:-}" in
server)
  umask 077
  printf '{"identities": [
  {"name": "admin", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],
   "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
  {"name": "voicebatch", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],
   "actions": ["Read:%s", "Write:%s", "List:%s", "Tagging:%s"]}
]}\n' "$S3_ADMIN_ACCESS_KEY" "$S3_ADMIN_SECRET_KEY" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" \
    "$S3_BUCKET" "$S3_BUCKET" "$S3_BUCKET" "$S3_BUCKET" > /tmp/s3.json
  # -ip: the address the master advertises (the compose service name); -ip.bind: listen on all
  # interfaces, so the healthcheck's 127.0.0.1 and the published port both reach it.
  exec weed server -dir=/data -ip=s3 -ip.bind=0.0.0.0 -master.volumeSizeLimitMB=1024 -volume.max=0 \
    -s3 -s3.port=9000 -s3.config=/tmp/s3.json
  ;;
bucket)
  if echo "s3.bucket.list" | weed shell -master=s3:9333 | grep -Eq "^[[:space:]]*${S3_BUCKET}([[:space:]]|$)"; then
    echo "s3-init: bucket ${S3_BUCKET} exists"
  else
    echo "s3.bucket.create -name ${S3_BUCKET}" | weed shell -master=s3:9333
    echo "s3-init: bucket ${S3_BUCKET} created"
  fi
  ;;
*)
  echo "usage: seaweedfs.sh server|bucket" >&2
  exit 2
  ;;
esac
