#!/usr/bin/env bash
# Builds the Debian package dist/weft_<version>_<arch>.deb with dpkg-deb:
# the compiled JavaScript (npm run build), the production node_modules (npm
# ci --omit=dev, with this machine's better-sqlite3 build when it is the same
# version, else built from source), /usr/bin/weft, the systemd units and the
# env files of packaging/. The package depends on the Node.js major it was
# built with (the native module's ABI). Prints the .deb's path last.
# Usage: bash scripts/package.sh   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

for tool in dpkg-deb dpkg npm node; do
  command -v "$tool" >/dev/null || { echo "package: $tool is required and not installed" >&2; exit 1; }
done
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
node_major=$(node -p 'process.versions.node.split(".")[0]')
node_abi=$(node -p 'process.versions.modules')
# The oldest Node.js weft supports (package.json's engines), or this major's first release.
min=$(node -p 'require("./package.json").engines.node.replace(/^>=\s*/, "")')
[[ ${min%%.*} == "$node_major" ]] || min=$node_major.0

stage=$(mktemp -d "${TMPDIR:-/tmp}/weft-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/weft_${version}_$arch
lib=$pkg/usr/lib/weft

# The JavaScript, built again only when a source is newer than dist/current.
if [[ ! -f dist/current/BUILT || -n $(find src -newer dist/current/BUILT -print -quit) ]]; then
  echo "package: building the JavaScript (npm run build)"
  npm run --silent build
fi
mkdir -p "$lib/bin" "$lib/dist" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/weft" "$pkg/usr/share/doc/weft" "$pkg/DEBIAN"
# dist/current as a directory of its own: BUILT and the modules, no src/ beside it (bin/weft then never rebuilds).
cp -rL dist/current "$lib/dist/current"
cp bin/weft "$lib/bin/weft"
cp package.json package-lock.json "$lib/"

echo "package: production node_modules (npm ci --omit=dev)"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# better-sqlite3's native module: the one this checkout built, if it is the same version (and so built
# for this node's ABI, which setup.sh installed it with); else built here, from source (about 75 s).
sqlite_version() { node -p "require('$1/node_modules/better-sqlite3/package.json').version"; }
native=node_modules/better-sqlite3/build/Release/better_sqlite3.node
if [[ -f $repo/$native && $(sqlite_version "$repo") == $(sqlite_version "$lib") ]]; then
  mkdir -p "$(dirname "$lib/$native")"
  cp "$repo/$native" "$lib/$native"
else
  echo "package: building better-sqlite3 from source"
  (cd "$lib" && npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error)
fi
# What only a build from source needs.
rm -rf "$lib/node_modules/better-sqlite3/deps" "$lib/node_modules/better-sqlite3/src" "$lib/node_modules/.package-lock.json"
find "$lib/node_modules/better-sqlite3/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$lib/node_modules/better-sqlite3/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
# What no production process reads, at each package's top (nested ones too): pino alone ships some 400 MB of test binaries.
find "$lib/node_modules" -regextype posix-extended -type d -regex '.*/node_modules/(@[^/]+/)?[^/]+/(tests?|bench|benchmarks?|docs|examples?)' -prune -exec rm -rf {} +
# The driver must load with this node, or the package would install a server that cannot open its store.
(cd "$lib" && node -e 'new (require("better-sqlite3"))(":memory:").prepare("select 1").get()') || {
  echo "package: better-sqlite3 does not load with node $(node --version) (ABI $node_abi)" >&2
  exit 1
}

ln -s ../lib/weft/bin/weft "$pkg/usr/bin/weft"
install -m 0644 packaging/systemd/weft-server.service packaging/systemd/weft-agent.service "$pkg/lib/systemd/system/"
install -m 0640 packaging/etc/server.env "$pkg/etc/weft/server.env"
install -m 0600 packaging/etc/agent.env "$pkg/etc/weft/agent.env"
install -m 0644 README.md docs/install.md docs/deploy.md "$pkg/usr/share/doc/weft/"
install -m 0644 packaging/debian/conffiles "$pkg/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$pkg/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@NODE_MAJOR@/$node_major/" -e "s/@NODE_ABI@/$node_abi/" \
  -e "s/@NODE_DEPENDS@/nodejs (>= $min), nodejs (<< $((node_major + 1)))/" packaging/debian/control.in >"$pkg/DEBIAN/control"

mkdir -p dist
out=dist/weft_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "package: $(du -h "$out" | cut -f1) for Node.js $node_major (ABI $node_abi)"
echo "$repo/$out"
