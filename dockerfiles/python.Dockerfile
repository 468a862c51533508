# The Python image a cell image starts from: `scm-python:<X.Y>`.
#
# With a registry, BASE_IMAGE is the official python:<X.Y>-slim and is used as-is (the build
# context's prefix/ is empty, so nothing is copied).
# Without one (`matrix.images.seed_base_images`), BASE_IMAGE is our local Debian root filesystem
# (`scm-debian:<suite>`, debootstrap of the host's own suite with the interpreters' runtime
# libraries) and prefix/ holds the host's pyenv interpreter at its own path
# (prefix/root/.pyenv/versions/X.Y.Z): pyenv builds are not relocatable, so it lands at the SAME
# path, minus site-packages (the host's tools and its CA hook stay on the host), tests and the
# static libpython. /usr/local/bin/python and python<X.Y> point at it.
# Built with BuildKit or the classic builder alike: no RUN --mount here.
ARG PYTHON_MINOR=3.11
ARG BASE_IMAGE=python:${PYTHON_MINOR}-slim
FROM ${BASE_IMAGE}
ARG PYTHON_MINOR
ARG PYTHON_PREFIX=/usr/local
ENV LANG=C.UTF-8
COPY prefix/ /
RUN set -eu; \
    py="${PYTHON_PREFIX}/bin/python${PYTHON_MINOR}"; \
    if [ "${PYTHON_PREFIX}" != /usr/local ]; then \
        ln -sf "$py" "/usr/local/bin/python${PYTHON_MINOR}"; \
        ln -sf "$py" /usr/local/bin/python; \
    fi; \
    /usr/local/bin/python -c "import ssl, zlib, bz2, sqlite3, ctypes, hashlib, json, socket, select; import sys; sys.version_info[0] < 3 or __import__('lzma'); print(sys.version.split()[0] + ' ' + ssl.OPENSSL_VERSION)"
