#!/usr/bin/env bash
# `npm run package:deb`: builds certpilot_<version>_all.deb from this checkout with dpkg-deb.
#
#   scripts/package-deb.sh [OUT_DIR]      (default dist/deb; prints the .deb's path last)
#
# Needs a checkout after `npm ci` (TypeScript, ts-node and the production dependencies in
# node_modules) and dpkg-deb; uses no network. The program is compiled straight into the
# staging tree (a concurrent test run keeps its dist/), production dependencies are copied
# from node_modules as `npm ls --omit=dev` lists them, and the man page and bash completion
# are rendered from the CLI's help data (scripts/package-docs.ts).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist/deb}" && cd "${1:-$ROOT/dist/deb}" && pwd)"
cd "$ROOT"

VERSION="$(node -p 'require("./package.json").version')"
NAME=certpilot
MAINTAINER="certpilot maintainers <maintainers@certpilot.example.org>"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/certpilot-deb.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/$NAME"
LIB="$PKG/usr/lib/certpilot"
DOC="$PKG/usr/share/doc/certpilot"

install -d "$LIB/bin" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/etc/certpilot" "$DOC" \
  "$PKG/usr/share/man/man1" "$PKG/usr/share/bash-completion/completions" \
  "$PKG/usr/share/lintian/overrides" "$PKG/DEBIAN"

# The program: compiled JavaScript only (no source maps: their sources are not shipped).
node node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$LIB/dist" --sourceMap false
# The package's own Node: Depends: nodejs (>= 20) provides /usr/bin/node.
sed '1s|^#!/usr/bin/env node$|#!/usr/bin/node|' bin/certpilot.js >"$LIB/bin/certpilot.js"
chmod 0755 "$LIB/bin/certpilot.js"
node -e '
  const p = require("./package.json");
  const keep = ["name", "version", "description", "license", "main", "bin", "engines", "dependencies"];
  const out = Object.fromEntries(keep.filter((k) => k in p).map((k) => [k, p[k]]));
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
' >"$LIB/package.json"
# /usr/bin/certpilot stays a JavaScript file (through the link): the daemon unit runs it as
# `/usr/bin/node <V8 memory flags> /usr/bin/certpilot run` (ExecStart= of certpilot.service).
ln -s ../lib/certpilot/bin/certpilot.js "$PKG/usr/bin/certpilot"

# Production dependencies: each package directory npm lists, without its nested node_modules
# (the nested ones it needs are listed themselves), tests or TypeScript sources.
npm ls --omit=dev --all --parseable | tail -n +2 | while read -r dir; do
  rel="${dir#"$ROOT"/}"
  install -d "$LIB/$rel"
  tar -C "$dir" -cf - --exclude=./node_modules --exclude='*.ts' --exclude='*.map' \
    --exclude='*.md' --exclude=./test --exclude=./tests . | tar -C "$LIB/$rel" -xf -
done
# ES-module builds (dist-es) of packages whose CommonJS entry is dist-cjs and whose exports map
# never names dist-es: certpilot is CommonJS, so require() never loads them (a third of the files).
node -e '
  const fs = require("fs"), path = require("path");
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = path.join(d, e.name);
    if (fs.existsSync(path.join(p, "package.json"))) {
      const pkg = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8"));
      if (String(pkg.main).includes("dist-cjs") && !JSON.stringify(pkg.exports ?? {}).includes("dist-es"))
        fs.rmSync(path.join(p, "dist-es"), { recursive: true, force: true });
    }
    if (e.name.startsWith("@") || e.name === "node_modules" || fs.existsSync(path.join(p, "node_modules"))) walk(p);
    if (fs.existsSync(path.join(p, "node_modules"))) walk(path.join(p, "node_modules"));
  } };
  walk(process.argv[1]);
' "$LIB/node_modules"
# Every dependency must still load from the staged tree.
(cd "$LIB" && node -e '
  for (const d of Object.keys(require("./package.json").dependencies)) require(require.resolve(d, { paths: [process.cwd()] }));
')
# Dot files are the packages' lint, VCS and npm settings, nothing that runs.
find "$LIB/node_modules" -name '.*' -prune -exec rm -rf {} +
find "$LIB/node_modules" -type d -empty -delete
# Executable bits only on scripts (some npm tarballs mark plain files executable).
find "$LIB/node_modules" -type f -perm /111 -print0 | while IFS= read -r -d '' f; do
  [ "$(head -c2 "$f")" = '#!' ] || chmod a-x "$f"
done
chmod -R u+rwX,go+rX,go-w "$LIB/node_modules"

install -m 0644 systemd/*.service systemd/*.timer systemd/*.path "$PKG/lib/systemd/system/"
install -m 0644 config/certpilot.yaml "$PKG/etc/certpilot/certpilot.yaml"

# Docs: the units' Documentation= points at systemd.md here, so docs/*.md stay uncompressed.
install -m 0644 README.md docs/*.md config/certpilot.example.yaml "$DOC/"
install -d "$DOC/providers" "$DOC/examples"
install -m 0644 config/prometheus/certpilot.rules.yml config/grafana/certpilot-dashboard.json "$DOC/examples/"
install -m 0644 docs/providers/*.md "$DOC/providers/"
sed "s/@VERSION@/$VERSION/" packaging/debian/copyright >"$DOC/copyright"
chmod 0644 "$DOC/copyright"
DATE="$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
printf '%s (%s) unstable; urgency=medium\n\n  * Release %s (see README.md).\n\n -- %s  %s\n' \
  "$NAME" "$VERSION" "$VERSION" "$MAINTAINER" "$DATE" | gzip -9n >"$DOC/changelog.gz"

node node_modules/ts-node/dist/bin.js --transpile-only scripts/package-docs.ts "$STAGE/share" >/dev/null
gzip -9n -c "$STAGE/share/man/man1/certpilot.1" >"$PKG/usr/share/man/man1/certpilot.1.gz"
install -m 0644 "$STAGE/share/bash-completion/completions/certpilot" \
  "$PKG/usr/share/bash-completion/completions/certpilot"
rm -rf "$STAGE/share"
install -m 0644 packaging/debian/lintian-overrides "$PKG/usr/share/lintian/overrides/certpilot"

install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$PKG/DEBIAN/"
echo /etc/certpilot/certpilot.yaml >"$PKG/DEBIAN/conffiles"
INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" -e "s/@MAINTAINER@/$MAINTAINER/" \
  packaging/debian/control >"$PKG/DEBIAN/control"
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$PKG/DEBIAN/md5sums"
chmod 0644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/conffiles" "$PKG/DEBIAN/md5sums"

DEB="$OUT/${NAME}_${VERSION}_all.deb"
dpkg-deb --root-owner-group -Zgzip --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
