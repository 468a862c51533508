# One cell image: `scm-cell:<hash>` = PYTHON_IMAGE + a virtualenv at /env holding PINS.
#
# The app sources are NOT in the image: the engine bind-mounts the repo's apps/ read-only at
# /apps when a cell runs, so changing an app never needs a rebuild. The tag is a content hash
# of (PYTHON_IMAGE id, PINS/STEPS, EXCLUDE_NEWER, this file, cell-install.sh, uv), so a warm run builds
# nothing at all.
#
# Needs BuildKit (RUN --mount). The CA bundle arrives as the optional secret `ca`
# (`--secret id=ca,src=$PIP_CERT`): it is visible to this RUN only and never stored in a layer;
# without it the build trusts the image's own CAs. The package caches live in a BuildKit cache
# mount, not in the image. The build context is this directory (only cell-install.sh is used).
ARG PYTHON_IMAGE=scm-python:3.11
FROM ${PYTHON_IMAGE}
# Space-separated requirement strings, e.g. "sentry-sdk==2.75.0 gevent==24.2.1".
ARG PINS
# ISO date for an era-consistent resolution (uv --exclude-newer); empty = no limit.
ARG EXCLUDE_NEWER=
# Optional install plan that replaces PINS/EXCLUDE_NEWER: one installer call per line,
# "<ISO date or -> <requirement> ..." (matrix.envs.install_steps: each pin with the packages
# of its own release date). matrix.images always passes it.
ARG STEPS=
# uv release used for the install (the host's uv, for parity with the venv backend); empty = newest.
ARG UV_VERSION=
RUN --mount=type=secret,id=ca \
    --mount=type=bind,source=cell-install.sh,target=/tmp/cell-install.sh \
    --mount=type=cache,id=scm-package-cache,target=/cache \
    CACHE_DIR=/cache sh /tmp/cell-install.sh
ENV VIRTUAL_ENV=/env \
    PATH=/env/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1
