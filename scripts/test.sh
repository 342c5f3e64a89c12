#!/usr/bin/env bash
# The README's test command (`npm test`): typecheck, then every vitest suite against real servers.
# Installs what a fresh Debian machine lacks for the integration tests (when root), so CI needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/node ] || npm ci
# Every script runs on the pinned Node 24 from the `node` devDependency, not the machine's own node.
export PATH="$PWD/node_modules/.bin:$PATH"
echo "node $(node --version)"

need_pkgs=()
command -v openssl >/dev/null || need_pkgs+=(openssl)
[ -x /usr/sbin/slapd ] || need_pkgs+=(slapd)
command -v ldapsearch >/dev/null || need_pkgs+=(ldap-utils)
[ -x /usr/bin/redis-server ] || need_pkgs+=(redis-server)
[ -x /usr/bin/redis-sentinel ] || need_pkgs+=(redis-sentinel)
# The admin console's browser test drives Debian's chromium (playwright-core never downloads a browser).
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}") >/dev/null
  else
    echo "missing: ${need_pkgs[*]} (install them, or run as root)" >&2
  fi
fi

tsc -p tsconfig.json --noEmit
echo "typecheck ok"

report=$(mktemp /tmp/mlgate-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
NO_COLOR=1 vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI can read.
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  // Per file (numFailedTestSuites also counts each failing describe block): a file that failed in beforeAll shows here.
  const files = r.testResults.filter((t) => t.status === "failed").length;
  const suites = files ? `, ${files} test files failed` : "";
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped${suites}`);
' "$report" || true
exit $status
