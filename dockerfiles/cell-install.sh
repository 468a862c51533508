#!/bin/sh
# Fill /env with $PINS using /usr/local/bin/python; record `pip freeze` in /env/freeze.txt.
#
# Run by cell.Dockerfile (BuildKit) and, without BuildKit, by matrix.images in a running
# container that is then committed. Inputs (environment): PINS, EXCLUDE_NEWER (may be empty),
# UV_VERSION (may be empty), CACHE_DIR (may be empty: no cache). The CA bundle, when given, is
# the file /run/secrets/ca (a BuildKit secret or a read-only bind mount; never in the image).
#
# Mirrors matrix/envs.py: Python 3 gets a venv filled by uv (the same resolver, and
# --exclude-newer works on every Python 3); Python 2.7 gets `virtualenv<20.22` and its pip.
set -eu
if [ -s /run/secrets/ca ]; then
    export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca REQUESTS_CA_BUNDLE=/run/secrets/ca
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off
export UV_NO_PROGRESS=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PYTHONDONTWRITEBYTECODE=1
if [ -n "${CACHE_DIR:-}" ]; then
    export UV_CACHE_DIR="$CACHE_DIR/uv" PIP_CACHE_DIR="$CACHE_DIR/pip"
else
    export UV_NO_CACHE=1 PIP_NO_CACHE_DIR=1
fi
# The real interpreter path (pyvenv.cfg `home` must point at the prefix, not at a symlink).
py=$(readlink -f /usr/local/bin/python)
major=$("$py" -c 'import sys; print(sys.version_info[0])')
echo "cell-install: $("$py" -c 'import sys; print(sys.version.split()[0])') pins: $PINS${EXCLUDE_NEWER:+ (exclude newer than $EXCLUDE_NEWER)}"

if [ "$major" = 2 ]; then
    tool=$(mktemp -d)
    "$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip >/dev/null
    "$py" -m pip install --quiet --target "$tool" "virtualenv<20.22"
    PYTHONPATH="$tool" "$py" -m virtualenv --quiet -p "$py" /env
    rm -rf "$tool"
    if [ -n "${EXCLUDE_NEWER:-}" ]; then
        echo "cell-install: warning: pip for Python 2.7 cannot exclude newer releases; EXCLUDE_NEWER ignored"
    fi
    # shellcheck disable=SC2086
    /env/bin/python -m pip install --quiet $PINS
else
    "$py" -m venv /env
    arch=$(uname -m)
    uvdir="${CACHE_DIR:-/tmp}/uv-bin/${UV_VERSION:-latest}-$arch"
    if [ ! -x "$uvdir/uv" ] || [ -z "${UV_VERSION:-}" ]; then
        dl=$(mktemp -d)
        # uv is a static binary in a py3-none wheel: fetch it for any Python 3 (pip's target flags).
        /env/bin/python -m pip download --quiet --no-deps --only-binary=:all: \
            --platform "manylinux2014_$arch" --python-version 312 -d "$dl" "uv${UV_VERSION:+==$UV_VERSION}"
        mkdir -p "$uvdir"
        /env/bin/python - "$dl" "$uvdir" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = [os.path.join(src, n) for n in os.listdir(src) if n.endswith(".whl")][0]
with zipfile.ZipFile(wheel) as zf:
    member = [n for n in zf.namelist() if n.endswith(".data/scripts/uv")][0]
    tmp = os.path.join(dest, ".uv.%d" % os.getpid())
    with zf.open(member) as fin, open(tmp, "wb") as fout:
        fout.write(fin.read())
os.chmod(tmp, 0o755)
os.rename(tmp, os.path.join(dest, "uv"))
PY
        rm -rf "$dl"
    fi
    # shellcheck disable=SC2086
    "$uvdir/uv" pip install --python /env/bin/python ${EXCLUDE_NEWER:+--exclude-newer "$EXCLUDE_NEWER"} $PINS
    [ -n "${CACHE_DIR:-}" ] || rm -rf "$uvdir"
fi
/env/bin/python -m pip freeze --all > /env/freeze.txt
echo "cell-install: installed:"
cat /env/freeze.txt
