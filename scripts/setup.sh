#!/usr/bin/env bash
# Make this checkout a working lab: system packages (as root on Debian) and .venv with the pinned stack.
# Idempotent: when requirements.txt and pyproject.toml are unchanged since the last success it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(dataset-fashion-mnist chromium fonts-wqy-microhei)
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: optional system packages missing: ${missing[*]}"
    echo "setup:   sudo apt-get install ${missing[*]}   (Fashion-MNIST can also be fetched with --download-dataset)"
  fi
fi

want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
stamp=.venv/.labkit-installed
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv is up to date"
else
  start=$SECONDS
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  echo "setup: installing the pinned Python stack into .venv (a few minutes the first time)"
  .venv/bin/pip install -q -r requirements.txt -e . 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -m labkit check
  echo "$want" > "$stamp"
  echo "setup: done in $((SECONDS - start)) s, .venv is $(du -sh .venv | cut -f1)"
fi

# Every time (cheap): the kernel the notebooks name, and JupyterLab's settings for the lab (no news pop-up).
.venv/bin/python -m ipykernel install --sys-prefix --name labkit --display-name labkit >/dev/null
install -D -m 644 scripts/jupyterlab-overrides.json .venv/share/jupyter/lab/settings/overrides.d/labkit.json
