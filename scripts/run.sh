#!/usr/bin/env bash
# Installs what is needed, starts `weft server` on an embedded SQLite file
# (./weft.db) and seeds a small example cloud through the API, then keeps
# the server in the foreground (Ctrl-C stops it). Re-running keeps the data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

api_listen=${WEFT_API_LISTEN:-127.0.0.1:8080}
mkdir -p .weft
if [[ -z "${WEFT_ADMIN_TOKEN:-}" ]]; then
  [[ -s .weft/admin-token ]] || node -e 'process.stdout.write("weft_"+require("crypto").randomBytes(32).toString("base64url"))' > .weft/admin-token
  WEFT_ADMIN_TOKEN=$(cat .weft/admin-token)
fi
export WEFT_ADMIN_TOKEN WEFT_API="http://${api_listen}" WEFT_TOKEN="$WEFT_ADMIN_TOKEN"

bin/weft server --db "${WEFT_DB:-sqlite:weft.db}" --api "$api_listen" >> .weft/server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -fsS "$WEFT_API/healthz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "run: weft server exited:" >&2; tail -n 20 .weft/server.log >&2; exit 1; }
  sleep 0.2
done
bin/weft seed
echo
bin/weft host list
echo
bin/weft instance list
cat <<MSG

weft server is running on $WEFT_API (store: ${WEFT_DB:-sqlite:weft.db}, log: .weft/server.log); Ctrl-C stops it.
In another shell:
  export WEFT_API=$WEFT_API WEFT_TOKEN=\$(cat $(pwd)/.weft/admin-token)
  bin/weft instance list
  bin/weft instance migrate acme-vm1
  curl -s \$WEFT_API/metrics | grep ^weft_
  curl -s \$WEFT_API/openapi.json
MSG
wait $server
