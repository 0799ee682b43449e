#!/usr/bin/env bash
# What `make test-browser` needs beside the project's environment: Debian's chromium and
# chromium-driver (through apt-get, as root, only when missing) and the `browser` extra
# (selenium) in the environment. Usage: tools/browser_deps.sh [VENV_DIR]
set -euo pipefail
venv=${1:-.venv}

have_chrome() {
  command -v chromedriver >/dev/null 2>&1 &&
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}
if ! have_chrome; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser_deps: installing chromium and chromium-driver with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "browser_deps: chromium and chromedriver are missing; install them first" \
         "(Debian/Ubuntu: sudo apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi
if ! "$venv/bin/python" -c "import selenium" 2>/dev/null; then
  bash "$(dirname "$0")/bootstrap.sh" "$venv" browser
fi
echo "browser_deps: $(chromium --version 2>/dev/null || chromium-browser --version)," \
     "selenium $("$venv/bin/python" -c 'import selenium; print(selenium.__version__)')"
