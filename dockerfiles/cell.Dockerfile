# One cell image: `scm-cell:<hash>` = PYTHON_IMAGE + a virtualenv at /env filled by INSTALL.
#
# The app sources are NOT in the image: the engine bind-mounts the repo's apps/ read-only at
# /apps when a cell runs, so changing an app never needs a rebuild. The tag is a content hash
# of (PYTHON_IMAGE id, INSTALL, this file, cell-install.sh, uv), so a warm run builds
# nothing at all.
#
# Needs BuildKit (RUN --mount). The CA bundle arrives as the optional secret `ca`
# (`--secret id=ca,src=$PIP_CERT`): it is visible to this RUN only and never stored in a layer;
# without it the build trusts the image's own CAs. The package caches live in a BuildKit cache
# mount, not in the image. The build context is this directory (only cell-install.sh is used).
ARG PYTHON_IMAGE=scm-python:3.11
FROM ${PYTHON_IMAGE}
# The install plan: one installer call per line, its words (matrix/backends/install.py
# installer_args: each pin with the packages of its own release date, never a pre-release).
ARG INSTALL
# uv release used for the install (the host's uv, for parity with the venv backend); empty = newest.
ARG UV_VERSION=
# Debian packages the stack needs besides Python ones (an app's `system` in the axes, e.g. redis-server).
ARG SYSTEM=
RUN --mount=type=secret,id=ca \
    --mount=type=bind,source=cell-install.sh,target=/tmp/cell-install.sh \
    --mount=type=cache,id=scm-package-cache,target=/cache \
    CACHE_DIR=/cache sh /tmp/cell-install.sh
ENV VIRTUAL_ENV=/env \
    PATH=/env/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1
