#!/bin/sh
# Checks the Backstage plugin from a clean clone: install from the lockfile, type-check
# (writing dist-types, which the build needs), lint, test, build. Prints each step's time.
set -eu
cd "$(dirname "$0")/.."

step() {
  name=$1
  shift
  start=$(date +%s)
  echo "== $name: $*"
  "$@"
  echo "== $name: $(($(date +%s) - start)) s"
}

command -v node >/dev/null 2>&1 || {
  echo "backstage-plugin needs Node.js 20.19 or later (and npm) on the PATH" >&2
  exit 1
}
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || {
  echo "backstage-plugin needs Node.js 20.19 or later, found $(node --version)" >&2
  exit 1
}

step "npm ci" npm ci --no-audit --no-fund --loglevel=error
step "tsc" npx tsc
step "prettier" npx prettier --check src dev
step "lint" npx backstage-cli package lint --max-warnings 0
# CI=true and --watchAll=false: outside CI the CLI would start jest in watch mode and never return.
step "test" env CI=true npx backstage-cli package test --ci --watchAll=false
step "build" npx backstage-cli package build
# The dev harness (dev/: the plugin in a Backstage dev app, bundled with esbuild into dev/dist)
# that tests/admin/ui/test_ui_backstage.py drives in a real browser.
step "dev build" node dev/build.mjs
