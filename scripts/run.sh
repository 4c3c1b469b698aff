#!/usr/bin/env bash
# The README's main command: installs what is needed, builds a whole cloud in
# network namespaces on this machine (`weft lab up`: a server, one agent and
# one BIRD per hypervisor, BIRD top-of-rack routers and a core, two tenants
# with overlapping subnets, 16 instances, an anycast VIP) and checks it end
# to end (`weft lab check`). The lab keeps running until `bin/weft lab down`.
# Needs root (network namespaces). Extra arguments (sizes: --sites, --racks-per-site,
# --hosts-per-rack, --tenants, --instances; --seed) go to `weft lab up`. Idempotent: a lab already up is checked again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "run: weft lab needs root (network namespaces, veth, nftables, BIRD); run as root" >&2
  exit 1
fi
bash scripts/setup.sh

mkdir -p .weft
if bin/weft lab status >/dev/null 2>&1; then
  echo "run: lab weft is already up; checking it (bin/weft lab down removes it)"
else
  bin/weft lab up "$@"
fi
bin/weft -o json lab status | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(`export WEFT_API=${j.api} WEFT_TOKEN_FILE=${j.tokenFile}`)})' > .weft/lab.env
bin/weft lab check
cat <<MSG

The lab is up (bin/weft lab status shows it). Point the CLI at its server:
  $(cat .weft/lab.env)
  bin/weft host list
  bin/weft instance list
  bin/weft agents
and remove everything it made with:
  bin/weft lab down
MSG
