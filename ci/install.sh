#!/usr/bin/env bash
# Installs everything r3f-repro and its tests need: the Python stack from requirements.txt (CPU torch,
# transformers, datasets, papermill, ... and this package, editable), and, on Debian/Ubuntu with apt-get,
# the system packages of two cross-check tests: Chromium (the HTML report is rendered in a real browser)
# and the Perl XML modules that the official ROUGE-1.5.5 script needs.
# Where the Python is externally managed (PEP 668: Debian 12, Ubuntu 24.04) or its site-packages are not
# writable, the stack goes into a project virtual environment, .venv, which ci/python then runs; there pip and
# setuptools>=70.1 come first (a fresh venv has setuptools 65 on Python 3.11, none on 3.12, and the wheel test
# builds without isolation against setuptools>=68).
# Switches: R3F_NO_VENV=1 never makes .venv; R3F_FORCE_VENV=1 always does (the test of this fallback);
# R3F_VENV_OPTIONS: extra `python -m venv` options; R3F_NO_APT=1 skips the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

debs=()
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
perl -MXML::Parser -e1 >/dev/null 2>&1 || debs+=(libxml-parser-perl)
perl -MXML::DOM -e1 >/dev/null 2>&1 || debs+=(libxml-dom-perl)
if [ ${#debs[@]} -gt 0 ] && [ "${R3F_NO_APT:-0}" != 1 ]; then
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
elif [ "${R3F_NO_VENV:-0}" != 1 ] && { [ "${R3F_FORCE_VENV:-0}" = 1 ] || needs_venv; }; then
  echo "the system Python is externally managed or not writable (or R3F_FORCE_VENV=1): installing into .venv" \
       "(ci/python runs it)"
  # shellcheck disable=SC2086  # R3F_VENV_OPTIONS: several options, split on purpose
  if ! "$PYTHON" -m venv ${R3F_VENV_OPTIONS:-} .venv >/dev/null 2>&1; then
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then  # Debian ships venv separately
      ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python$ver-venv" >/dev/null
      # shellcheck disable=SC2086
      "$PYTHON" -m venv ${R3F_VENV_OPTIONS:-} .venv
    else
      echo "error: cannot create .venv: install the venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  PYTHON=.venv/bin/python
fi
if [ "$PYTHON" = .venv/bin/python ]; then  # new or earlier .venv: a pip and a setuptools that build this package
  "$PYTHON" -m pip install -q "pip>=23" "setuptools>=70.1"  # 70.1: bdist_wheel built in, no `wheel` package needed
fi
"$PYTHON" -m pip install -q -r requirements.txt
