#!/usr/bin/env bash
# Installs everything r3f-repro and its tests need: the Python stack from requirements.txt (CPU torch,
# transformers, datasets, papermill, ... and this package, editable), and, on Debian/Ubuntu with apt-get,
# the system packages of two cross-check tests: Chromium (the HTML report is rendered in a real browser)
# and the Perl XML modules that the official ROUGE-1.5.5 script needs.
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

"$PYTHON" -m pip install -q -r requirements.txt
