#!/usr/bin/env bash
# Installs what weft needs on Debian 12, idempotently: system packages
# (only those missing) and the npm dependencies (only when the lock file
# changed). Usage: scripts/setup.sh [--with-postgres]
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2, nftables, python3 and BIRD 2 are what the agent drives; tcpdump, iperf3, ping and
# scapy (forged frames) are what the end-to-end tests and benchmarks use; prometheus brings
# promtool, which test/integration/metrics.test.ts runs on the live /metrics; frr (vtysh -C) and
# libvirt-clients (virt-xml-validate, which runs libxml2-utils' xmllint; virsh, whose test:///default
# driver the agent's libvirt code is tested against) check docs/deploy.md's snippets
# (test/integration/deploy-doc.test.ts) and the VM profiles; cloud-init (`cloud-init schema`,
# `devel net-convert`) checks the profiles' seeds, and cloud-image-utils (cloud-localds, with
# genisoimage) builds them; qemu-utils (qemu-img) makes each instance's disk on its image; openssh-client (ssh-keygen) makes the test keys; zsh runs the generated completion (test/integration/cli-output.test.ts);
# qemu-system-x86 and busybox-static boot the lab's real VM (`weft lab up --boot-vm`, src/lab/guest.ts) on Debian's kernel, fetched below;
# chromium (Debian's, driven by playwright-core) runs the web console's browser tests (test/browser/); frr-pythontools
# (frr-reload.py) is how `weft fabric apply` reloads FRR (test/integration/fabric-frr.test.ts).
need_pkgs=(g++ make python3 iproute2 ca-certificates curl openssl nftables tcpdump iperf3 iputils-ping python3-scapy bird2 prometheus frr libvirt-clients libxml2-utils cloud-init cloud-image-utils genisoimage qemu-utils openssh-client zsh qemu-system-x86 busybox-static chromium frr-pythontools)
if [[ "${1:-}" == "--with-postgres" ]]; then need_pkgs+=(postgresql); fi

if ! command -v node >/dev/null; then
  echo "setup: Node.js 20 or newer is required and not installed (Debian 12's nodejs package is 18, too old)." >&2
  exit 1
fi
# package.json's engines: 20.11 is the first with import.meta.dirname.
if [[ $(node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 20 || (a === 20 && b >= 11)') != true ]]; then
  echo "setup: Node.js $(node --version) is too old; weft needs 20.11 or newer (22 preferred: 20 is past its end of life)." >&2
  exit 1
fi

missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's postgresql package starts a cluster on port 5432; weft's tests run their own.
  # Debian's prometheus package enables its server; only promtool is wanted here.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  # Debian's frr package starts its daemons; only vtysh's config check is wanted here.
  if [[ " ${missing[*]} " == *" frr "* ]] && command -v systemctl >/dev/null; then systemctl disable --now frr >/dev/null 2>&1 || true; fi
  # cloud-init is wanted for its checks only: it must not configure this machine at its next boot.
  if [[ " ${missing[*]} " == *" cloud-init "* ]]; then touch /etc/cloud/cloud-init.disabled; fi
fi

# The lab guest's kernel (src/lab/guest.ts GUEST_DIR): Debian's, from the package linux-image-amd64
# depends on, unpacked (not installed: this machine keeps its own kernel), with the virtio
# modules the guest loads. About 70 MB downloaded once.
guest_dir=${WEFT_GUEST_DIR:-/var/cache/weft/guest}
if [[ ! -f $guest_dir/vmlinuz && $(dpkg --print-architecture) == amd64 && $(id -u) -eq 0 ]]; then
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  echo "setup: fetching the lab guest's kernel ($kpkg) into $guest_dir"
  ktmp=$(mktemp -d)
  trap 'rm -rf "$ktmp"' EXIT
  chown _apt "$ktmp" 2>/dev/null || true
  (cd "$ktmp" && apt-get download -qq "$kpkg" 2>/dev/null)
  dpkg-deb -x "$ktmp"/*.deb "$ktmp/x"
  mkdir -p "$guest_dir.new/modules"
  cp "$ktmp"/x/boot/vmlinuz-* "$guest_dir.new/vmlinuz"
  for m in virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio_net net_failover failover; do
    ko=$(find "$ktmp/x/lib/modules" -name "$m.ko" -print -quit)
    if [[ -z $ko ]]; then echo "setup: $kpkg has no module $m.ko" >&2; exit 1; fi
    cp "$ko" "$guest_dir.new/modules/"
  done
  echo "$kpkg" > "$guest_dir.new/VERSION"
  rm -rf "$guest_dir" && mv "$guest_dir.new" "$guest_dir"
  rm -rf "$ktmp"
  trap - EXIT
fi

# npm dependencies, only when node_modules is missing or older than the lock
# file. `npm install`, not `npm ci`: the registry reachable here lacks some of
# Biome's optional per-platform packages, which npm ci refuses to skip.
# Versions are pinned exactly in package.json and the lock file either way.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json || package.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm dependencies (builds better-sqlite3 from source if needed; about 75 s the first time)"
  npm install --no-audit --no-fund --loglevel=error
fi

# The JavaScript that bin/weft runs (dist/current), when src/ changed since the last build.
if [[ ! -f dist/current/BUILT || -n $(find src web -newer dist/current/BUILT -print -quit) ]]; then
  echo "setup: building dist/ (npm run build)"
  npm run --silent build
fi
