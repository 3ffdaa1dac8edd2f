#!/usr/bin/env bash
# Installs everything r3f-repro and its tests need: the Python stack from requirements.txt (CPU torch,
# transformers, datasets, papermill, ... and this package, editable), and, on Debian/Ubuntu with apt-get,
# the system packages of two cross-check tests: Chromium (the HTML report is rendered in a real browser)
# and the Perl XML modules that the official ROUGE-1.5.5 script needs.
# Where the Python is externally managed (PEP 668: Debian 12, Ubuntu 24.04) or its site-packages are not
# writable, the stack goes into a project virtual environment, .venv, which ci/python then runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

debs=()
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
perl -MXML::Parser -e1 >/dev/null 2>&1 || debs+=(libxml-parser-perl)
perl -MXML::DOM -e1 >/dev/null 2>&1 || debs+=(libxml-dom-perl)
if [ ${#debs[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  else
    echo "note: ${debs[*]} missing and apt-get (as root) unavailable: the browser-rendering and ROUGE-1.5.5" \
         "cross-check tests will be skipped outside CI" >&2
  fi
fi

# Where may pip install? (an active venv, or a writable, not externally managed system Python)
needs_venv() {
  "$PYTHON" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
writable = os.access(sysconfig.get_path("purelib"), os.W_OK)
sys.exit(0 if not in_venv and (managed or not writable) else 1)
PY
}
if [ -x .venv/bin/python ]; then
  PYTHON=.venv/bin/python
elif [ "${R3F_NO_VENV:-0}" != 1 ] && needs_venv; then
  echo "the system Python is externally managed or not writable: installing into .venv (ci/python runs it)"
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then  # Debian ships venv separately
      ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python$ver-venv" >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "error: cannot create .venv: install the venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  PYTHON=.venv/bin/python
  "$PYTHON" -m pip install -q --upgrade pip
fi
"$PYTHON" -m pip install -q -r requirements.txt
