#!/bin/sh
# Fill /env using the image's Python; record `pip freeze` in /env/freeze.txt.
#
# Run by cell.Dockerfile (BuildKit) and, without BuildKit, by the Docker backend in a running
# container that is then committed. Inputs (environment): INSTALL (one installer call per line:
# its words, exactly what matrix/backends/install.py `installer_args` gives the venv backend;
# on Python 2.7 a word "cap:<req>" is a pip constraint, not a requirement), UV_VERSION (may be
# empty = newest), SYSTEM (Debian packages the stack needs, installed with apt-get first; may be
# empty), CACHE_DIR (may be empty = a throw-away cache). The CA
# bundle, when given, is the file /run/secrets/ca (a BuildKit secret or a read-only bind mount;
# never part of the image).
#
# Mirrors matrix/backends/venv.py: Python 3 gets a venv made and filled by uv (the same resolver, the
# same arguments, no pip seeded, `uv pip freeze`); Python 2.7 gets `virtualenv<20.22` and its pip.
# The line "cell-install: installing the pins" separates setup from the pins' own resolution:
# only failures after it can mean "no release for this Python" (matrix.images reads it).
set -eu
if [ -s /run/secrets/ca ]; then
    export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca REQUESTS_CA_BUNDLE=/run/secrets/ca
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off
export UV_NO_PROGRESS=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PYTHONDONTWRITEBYTECODE=1
scratch_cache=
if [ -z "${CACHE_DIR:-}" ]; then  # old pips break on PIP_NO_CACHE_DIR=1: use a scratch cache instead
    CACHE_DIR=$(mktemp -d)
    scratch_cache=$CACHE_DIR
fi
export UV_CACHE_DIR="$CACHE_DIR/uv" PIP_CACHE_DIR="$CACHE_DIR/pip"
if [ -n "${SYSTEM:-}" ]; then
    echo "cell-install: Debian packages: $SYSTEM"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $SYSTEM >/dev/null
    rm -rf /var/lib/apt/lists/*
fi
# The real interpreter path: pyvenv.cfg's `home` must be the prefix's bin/, not a symlink's directory.
py=$(readlink -f /usr/local/bin/python)
major=$("$py" -c 'import sys; print(sys.version_info[0])')
steps=${INSTALL:-}
echo "cell-install: Python $("$py" -c 'import sys; print(sys.version.split()[0])'), installer calls:"
printf '%s\n' "$steps" | sed 's/^/    /'

if [ "$major" = 2 ]; then
    tool=$(mktemp -d)
    "$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip >/dev/null
    "$py" -m pip install --quiet --target "$tool" "virtualenv<20.22"
    PYTHONPATH="$tool" "$py" -m virtualenv --quiet -p "$py" /env
    rm -rf "$tool"
    echo "cell-install: installing the pins"
    # pip for Python 2.7 has no date limit: the pins are exact, companions capped ("cap:" words).
    printf '%s\n' "$steps" | while read -r words; do
        [ -z "$words" ] && continue
        : > /tmp/era-constraints.txt
        reqs=
        for w in $words; do
            case "$w" in cap:*) echo "${w#cap:}" >> /tmp/era-constraints.txt;; *) reqs="$reqs $w";; esac
        done
        # shellcheck disable=SC2086
        /env/bin/python -m pip install --quiet -c /tmp/era-constraints.txt $reqs
    done
else
    uvdir="$CACHE_DIR/uv-bin/${UV_VERSION:-latest}-$(uname -m)"
    if [ ! -x "$uvdir/uv" ] || [ -z "${UV_VERSION:-}" ]; then
        mkdir -p "$uvdir"
        # uv is one static binary inside a py3-none wheel: take that wheel from PyPI's simple index
        # (any Python 3, whatever its pip can do), check its sha256, extract the binary.
        "$py" - "${UV_VERSION:-}" "$uvdir" <<'PY'
import hashlib, io, os, platform, re, sys, zipfile
from urllib.request import urlopen
version, dest = sys.argv[1], sys.argv[2]
index = "https://pypi.org/simple/uv/"
page = urlopen(index, timeout=60).read().decode("utf-8")
links = re.findall(r'href="([^"]+/(uv-([0-9][^-]*)-py3-none-[^"#]*manylinux2014_%s[^"#]*\.whl)#sha256=([0-9a-f]+))"'
                   % re.escape(platform.machine()), page)
if version:
    links = [link for link in links if link[2] == version]
else:  # newest final release
    links = [link for link in links if re.match(r"^[0-9.]+$", link[2])]
    links.sort(key=lambda link: [int(x) for x in link[2].split(".")])
if not links:
    sys.exit("no uv %s wheel for %s in %s" % (version or "(newest)", platform.machine(), index))
url, filename, _, sha256 = links[-1]
if url.startswith("/"):
    url = "https://pypi.org" + url
elif not url.startswith("http"):
    url = index + url
data = urlopen(url.split("#")[0], timeout=300).read()
if hashlib.sha256(data).hexdigest() != sha256:
    sys.exit("sha256 mismatch for " + filename)
with zipfile.ZipFile(io.BytesIO(data)) as zf:
    member = [n for n in zf.namelist() if n.endswith(".data/scripts/uv")][0]
    tmp = os.path.join(dest, ".uv.%d" % os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(zf.read(member))
os.chmod(tmp, 0o755)
os.rename(tmp, os.path.join(dest, "uv"))
print("cell-install: uv from " + filename)
PY
    fi
    # The venv as the venv backend makes it (`uv venv`, no pip or setuptools seeded): `python -m venv`'s
    # ensurepip took 3 s of a 6.5 s image build and put packages in the image that the venv envs lack.
    "$uvdir/uv" venv --quiet --python "$py" /env
    echo "cell-install: installing the pins"
    printf '%s\n' "$steps" | while read -r words; do
        [ -z "$words" ] && continue
        # shellcheck disable=SC2086
        "$uvdir/uv" pip install --python /env/bin/python $words
    done
fi
# Bytecode once, here: containers run with PYTHONDONTWRITEBYTECODE=1, so without it every app start
# compiles every module it imports again (0.5 s -> 0.9 s for fastapi + uvicorn + the SDK). The venv
# backend gets the same on the first import. A file that is not valid for this Python (a package's
# py2-only module) is skipped, as at import.
if [ "$major" = 2 ]; then
    /env/bin/python -m compileall -q /env/lib >/dev/null 2>&1 || true
else
    /env/bin/python -m compileall -q -j 0 /env/lib >/dev/null 2>&1 || true
fi
if [ "$major" = 2 ]; then
    /env/bin/python -m pip freeze --all > /env/freeze.txt
else
    "$uvdir/uv" pip freeze --python /env/bin/python > /env/freeze.txt
fi
[ -z "$scratch_cache" ] || rm -rf "$scratch_cache"
echo "cell-install: installed:"
cat /env/freeze.txt
