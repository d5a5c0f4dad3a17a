#!/usr/bin/env bash
# Installs what the end-to-end suite drives, once, into .cache/ (git ignores it):
# Debian's Chromium (Playwright's browser), and code-server 4.100.3 (VS Code 1.100.3, the last
# release that runs on Node 20). code-server's own postinstall refuses root and downloads
# ripgrep, so its steps are done here by hand, with Debian's ripgrep.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=4.100.3
DEST=".cache/code-server-$VERSION"
BIN="$DEST/node_modules/code-server/out/node/entry.js"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -f "$DEST/.complete" ]; then
  echo "code-server $VERSION already in $DEST"
  exit 0
fi
rm -rf "$DEST"
mkdir -p "$DEST"
cd "$DEST"
echo '{"name":"synbal-e2e-code-server","private":true}' > package.json
export npm_config_yes=true npm_config_audit=false npm_config_fund=false
npm install --ignore-scripts --no-save "code-server@$VERSION"
# argon2 must be rebuilt where it is hoisted, or code-server fails at start.
npm rebuild argon2 --foreground-scripts
cd node_modules/code-server/lib/vscode
npm install --omit=dev --ignore-scripts
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm rebuild --foreground-scripts
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sf code-linux.sh code-server)
(cd bin/helpers && ln -sf browser-linux.sh browser.sh)
(cd extensions && npm install --omit=dev)
cd - >/dev/null
touch .complete
echo "code-server $VERSION installed in $DEST"
