#!/usr/bin/env bash
# Prepare a fresh machine: the speech engines (Debian packages) and a virtual
# environment with the project installed. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# speech engines and the dictionary; gcc + python3-dev build SVOX Pico (ttspico); music and ambience
# (wesnoth, sonic-pi) are real backgrounds for training and evaluation streams (shared/ENGINES.md)
APT_PACKAGES="espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts wamerican gcc python3-dev
 wesnoth-1.16-music sonic-pi-samples"

missing_system_packages() {
    local missing=""
    command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
    command -v festival >/dev/null 2>&1 || missing="$missing festival"
    for voice in kal_diphone ked_diphone cmu_us_slt_arctic_hts; do
        ls -d /usr/share/festival/voices/*/"$voice" >/dev/null 2>&1 || missing="$missing festival-voice:$voice"
    done
    [ -f /usr/share/dict/american-english ] || missing="$missing wamerican"
    command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
    dpkg -s wesnoth-1.16-music sonic-pi-samples >/dev/null 2>&1 || missing="$missing wesnoth-1.16-music/sonic-pi-samples"
    echo "$missing"
}

if [ -n "$(missing_system_packages)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing speech engines: $APT_PACKAGES" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $APT_PACKAGES >/dev/null
    else
        echo "setup: missing:$(missing_system_packages). Install them with: sudo apt-get install $APT_PACKAGES" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# torch first, pinned: it comes from local disk on these machines in about a minute.
if ! "$VENV/bin/python" -c "import torch, torchaudio" >/dev/null 2>&1; then
    "$VENV/bin/pip" install -q torch==2.14.1 torchaudio==2.11.0 2>&1 | grep -v "is ignored" || true
fi
"$VENV/bin/pip" install -q -e ".[train,dev,export,voices]" 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -c "import audioconv, torch, lightning, hydra" || { echo "setup: the environment in $VENV is broken" >&2; exit 1; }
echo "setup: ready ($VENV)" >&2
