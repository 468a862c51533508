"""Docker base images, seeded offline when no registry answers.

  scm-debian:<suite>   `debootstrap --variant=minbase <host suite>` from the host's own Debian
                       mirror, with the interpreters' runtime libraries, then `docker import`.
                       The rootfs tarball is cached under .matrix/docker/.
  scm-python:<X.Y>     dockerfiles/python.Dockerfile: that base + the host's pyenv interpreter
                       copied at the SAME path (pyenv builds are not relocatable), or, where a
                       registry answers, the official python:<X.Y>-slim as-is.

Cell images on top of these: `cell_images.py`. Every docker call goes through `engine`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from ...paths import CACHE_DIR, REPO
from ..base import EnvError
from ..install import _uv
from ..interpreters import Interpreter
from . import engine as docker

log = logging.getLogger("matrix.images")

DOCKERFILES = os.path.join(REPO, "dockerfiles")
PYTHON_DOCKERFILE = os.path.join(DOCKERFILES, "python.Dockerfile")
DOCKER_CACHE = os.path.join(CACHE_DIR, "docker")
LABEL = "org.sentry-context-matrix"

# What the pyenv interpreters link against (ldd of bin/python and lib-dynload/*.so; tkinter left
# out), plus ca-certificates. Installed at debootstrap time, from the same mirror, no TLS needed.
RUNTIME_PACKAGES = (
    "ca-certificates", "libssl3", "libffi8", "libsqlite3-0", "zlib1g", "libbz2-1.0", "liblzma5",
    "libreadline8", "libncursesw6", "libtinfo6", "libexpat1", "libuuid1", "libnsl2", "libtirpc3",
    "libcrypt1", "libgdbm6", "libgdbm-compat4",
    "netbase",  # /etc/protocols and /etc/services: dnspython (eventlet) resolves 'tcp' at import
)
# Seeded python images remember which runtime set they were built on, so changing it rebuilds them.
RUNTIME_DIGEST = hashlib.sha256(" ".join(sorted(RUNTIME_PACKAGES)).encode()).hexdigest()[:12]
# Left out of the interpreter copy: the host's installed tools (and its sitecustomize/.pth hooks),
# the test suite and the static library. bin/ keeps only CPython's own entry points.
_BIN_KEEP = re.compile(r"^(python|pydoc|idle|2to3)[0-9.]*(m|-config|m-config)?$")

_seed_lock = threading.Lock()
_registry: bool | None = None  # None: not probed yet


# ---------------------------------------------------------------------------------------------
# Host facts


def host_suite(os_release: str = "/etc/os-release") -> str:
    """VERSION_CODENAME of the host (never assumed)."""
    with open(os_release) as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            if key == "VERSION_CODENAME" and value.strip('"'):
                return value.strip('"')
    raise EnvError(f"no VERSION_CODENAME in {os_release}: cannot tell which Debian suite to debootstrap")


def host_mirror(suite: str, roots: tuple[str, ...] = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")) -> str:
    """The Debian mirror URL the host's apt uses for `suite` (main); $MATRIX_DEBIAN_MIRROR overrides."""
    if os.environ.get("MATRIX_DEBIAN_MIRROR"):
        return os.environ["MATRIX_DEBIAN_MIRROR"]
    files: list[str] = []
    for root in roots:
        if os.path.isdir(root):
            files += sorted(os.path.join(root, n) for n in os.listdir(root) if n.endswith((".list", ".sources")))
        elif os.path.isfile(root):
            files.append(root)
    for path in files:
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            continue
        if path.endswith(".sources"):  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if ("deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split()
                        and "main" in fields.get("components", "").split() and fields.get("enabled", "yes") != "no"):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^\]]*\]", "", line.split("#")[0]).split()
                if len(parts) >= 4 and parts[0] == "deb" and parts[2] == suite and "main" in parts[3:]:
                    return parts[1]
    raise EnvError(f"no apt source for suite {suite!r} (main) in {', '.join(roots)}; set MATRIX_DEBIAN_MIRROR")


def ca_secret() -> dict[str, str]:
    """{'ca': $PIP_CERT} when that file exists, else {} (then no secret is passed at all)."""
    path = os.environ.get("PIP_CERT") or ""
    return {"ca": path} if path and os.path.isfile(path) else {}


_uv_version: str | None = None


def uv_version() -> str:
    """The host's uv release (the venv backend's resolver), used in the images too; '' if unknown."""
    global _uv_version
    if _uv_version is None:
        try:
            out = subprocess.run(_uv() + ["--version"], capture_output=True, text=True, timeout=30).stdout
            match = re.search(r"uv (\d+\.\d+\.\d+)", out)
            _uv_version = match.group(1) if match else ""
        except (OSError, subprocess.SubprocessError):
            _uv_version = ""
    return _uv_version


@contextlib.contextmanager
def _file_lock(name: str):
    """A cross-process lock (parallel nox sessions seed the same images)."""
    os.makedirs(DOCKER_CACHE, exist_ok=True)
    with open(os.path.join(DOCKER_CACHE, name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_logged(argv: list[str], log_lines: list[str], timeout: float) -> None:
    log_lines.append("$ " + " ".join(argv))
    log.debug("%s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    log_lines.append((proc.stdout + proc.stderr).strip()[-4000:])
    if proc.returncode != 0:
        last = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        raise EnvError(f"{os.path.basename(argv[0])} exited {proc.returncode}: {last[-1] if last else 'no output'}")


# ---------------------------------------------------------------------------------------------
# Base images


def debian_tag(suite: str) -> str:
    return f"scm-debian:{suite}"


def python_tag(minor: str) -> str:
    return f"scm-python:{minor}"


def rootfs_name(suite: str, mirror: str) -> str:
    """The tarball name of a rootfs: a digest of what goes into it, so a change makes a new one."""
    digest = hashlib.sha256(json.dumps([suite, mirror, sorted(RUNTIME_PACKAGES)]).encode()).hexdigest()[:12]
    return f"rootfs-{suite}-{digest}.tar"


def rootfs_tar(suite: str, mirror: str, log_lines: list[str] | None = None) -> str:
    """debootstrap a minbase rootfs of `suite` (+ runtime libs) and cache it as a tarball; returns its path."""
    log_lines = log_lines if log_lines is not None else []
    tar_path = os.path.join(DOCKER_CACHE, rootfs_name(suite, mirror))
    if os.path.exists(tar_path):
        return tar_path
    if not shutil.which("debootstrap"):
        raise EnvError("debootstrap is not installed (apt-get install -y debootstrap)")
    os.makedirs(DOCKER_CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".rootfs-{suite}-", dir=DOCKER_CACHE)
    try:
        target = os.path.join(work, "root")
        _run_logged(["debootstrap", "--variant=minbase", "--include=" + ",".join(RUNTIME_PACKAGES),
                     suite, target, mirror], log_lines, timeout=1800)
        # Slim it: package caches and docs are not needed at run time; apt itself stays usable.
        for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                    "usr/share/info", "usr/share/locale", "var/log"):
            path = os.path.join(target, rel)
            if os.path.isdir(path):
                for name in os.listdir(path):
                    child = os.path.join(path, name)
                    if name in ("partial", "lock"):
                        continue
                    if os.path.isdir(child) and not os.path.islink(child):
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        os.unlink(child)
        tmp_tar = os.path.join(work, "rootfs.tar")
        _run_logged(["tar", "--numeric-owner", "--xattrs", "-C", target, "-cf", tmp_tar, "."], log_lines, timeout=900)
        os.rename(tmp_tar, tar_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tar_path


def ensure_debian_image(log_lines: list[str] | None = None) -> str:
    """`scm-debian:<host suite>`, imported from the cached debootstrap tarball if it does not exist yet."""
    suite = host_suite()
    tag = debian_tag(suite)
    mirror = host_mirror(suite)
    if docker.image_labels(tag).get(f"{LABEL}.rootfs") == rootfs_name(suite, mirror):
        return tag
    t0 = time.monotonic()
    tar_path = rootfs_tar(suite, mirror, log_lines)
    docker.import_rootfs(tar_path, tag, changes=[
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL}.rootfs={os.path.basename(tar_path)} {LABEL}.mirror={mirror}",
        'CMD ["bash"]',
    ])
    log.info("seeded %s from %s in %.1fs", tag, mirror, time.monotonic() - t0)
    return tag


def _interpreter_prefix(interp: Interpreter) -> str:
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(interp.path)))
    if not os.path.isdir(os.path.join(prefix, "lib", f"python{interp.minor}")):
        raise EnvError(f"{interp.path} is not a self-contained prefix install (no lib/python{interp.minor} under "
                       f"{prefix}): only such interpreters (pyenv builds) can be copied into an image")
    if prefix in ("/", "/usr"):
        raise EnvError(f"{interp.path} is the system Python; copy only prefix installs (pyenv builds)")
    return prefix


def _stage_interpreter(prefix: str, minor: str, dest_root: str) -> None:
    """Hard-link (or copy) the interpreter tree into dest_root + prefix, minus what stays on the host."""
    stdlib = os.path.join(prefix, "lib", f"python{minor}")
    skip_dirs = {os.path.join(stdlib, "test"), os.path.join(stdlib, "site-packages")}
    for here, dirs, files in os.walk(prefix):
        out = dest_root + here
        os.makedirs(out, exist_ok=True)
        shutil.copystat(here, out, follow_symlinks=False)
        if here in skip_dirs:
            dirs[:] = []
            continue  # the directory itself stays, empty
        is_bin = here == os.path.join(prefix, "bin")
        for name in dirs[:]:
            src = os.path.join(here, name)
            if os.path.islink(src):  # os.walk does not descend into symlinked dirs: recreate the link
                os.symlink(os.readlink(src), os.path.join(out, name))
                dirs.remove(name)
        for name in files:
            src = os.path.join(here, name)
            if is_bin and not _BIN_KEEP.match(name):
                continue
            if name.endswith(".a") and name.startswith("libpython"):
                continue
            dst = os.path.join(out, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def registry_available() -> bool:
    """Whether python:<X.Y>-slim images can be pulled; one bounded `docker pull` per process."""
    global _registry
    if _registry is None:
        if os.environ.get("MATRIX_DOCKER_REGISTRY") in ("0", "no", "false"):
            _registry = False
        else:
            _registry = docker.image_exists("python:3.12-slim") or docker.pull("python:3.12-slim", timeout=30)
    return _registry


def _reusable(labels: dict[str, str], interp: Interpreter) -> bool:
    """An existing scm-python tag is reused if it came from a registry or holds this very interpreter."""
    if labels.get(f"{LABEL}.python-source") == "registry":
        return True
    suite = host_suite()
    return (labels.get(f"{LABEL}.python") == interp.version
            and labels.get(f"{LABEL}.python-runtime") == RUNTIME_DIGEST
            and labels.get(f"{LABEL}.rootfs") == rootfs_name(suite, host_mirror(suite)))  # inherited from the base


def ensure_python_image(interp: Interpreter, log_lines: list[str] | None = None) -> str:
    """`scm-python:<X.Y>` for this interpreter; built once, reused while the interpreter is the same."""
    log_lines = log_lines if log_lines is not None else []
    tag = python_tag(interp.minor)
    if _reusable(docker.image_labels(tag), interp):
        return tag
    with _seed_lock, _file_lock("seed"):
        if _reusable(docker.image_labels(tag), interp):  # built by someone else meanwhile
            return tag
        t0 = time.monotonic()
        official = f"python:{interp.minor}-slim"
        ctx = tempfile.mkdtemp(prefix=f".ctx-python-{interp.minor}-", dir=_mkdir(DOCKER_CACHE))
        try:
            os.makedirs(os.path.join(ctx, "prefix"))
            if registry_available() and (docker.image_exists(official) or docker.pull(official, timeout=300)):
                base, prefix, source = official, "/usr/local", "registry"
            else:
                base, prefix, source = ensure_debian_image(log_lines), _interpreter_prefix(interp), "seeded"
                _stage_interpreter(prefix, interp.minor, os.path.join(ctx, "prefix"))
            build_args = {"BASE_IMAGE": base, "PYTHON_MINOR": interp.minor, "PYTHON_PREFIX": prefix}
            labels = {f"{LABEL}.python": interp.version if source == "seeded" else "",
                      f"{LABEL}.python-runtime": RUNTIME_DIGEST,
                      f"{LABEL}.python-source": source, f"{LABEL}.python-prefix": prefix}
            _build_logged(ctx, PYTHON_DOCKERFILE, tag, build_args, {}, labels, log_lines, classic_ok=True)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
        log.info("built %s (%s, base %s) in %.1fs", tag, source, base, time.monotonic() - t0)
        return tag


def _mkdir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def _build_logged(ctx: str, dockerfile: str, tag: str, build_args: dict[str, str], secrets: dict[str, str],
                  labels: dict[str, str], log_lines: list[str], classic_ok: bool = False,
                  output: list[str] | None = None) -> None:
    """docker build, its own lines (the last 8,000 characters) appended to log_lines; the whole output
    to `output` when given."""
    output = output if output is not None else []
    log_lines.append(f"$ docker build -f {os.path.relpath(dockerfile, REPO)} -t {tag} "
                     + " ".join(f"--build-arg {k}={v}" for k, v in build_args.items())
                     + "".join(f" --secret id={k},src={v}" for k, v in secrets.items()) + f" {ctx}")
    try:
        try:
            docker.build(ctx, dockerfile, tag, build_args, secrets, labels, output=output)
        except docker.BuildKitUnavailable:
            if not classic_ok:
                raise
            docker.build(ctx, dockerfile, tag, build_args, {}, labels, output=output, buildkit=False)
    finally:
        log_lines.append("\n".join(docker.build_lines("".join(output)))[-8000:])


def seed_base_images(pythons: list[Interpreter], log_lines: list[str] | None = None) -> dict[str, str]:
    """The documented offline seeding step: {minor: python image tag} for every interpreter given.

    Where a registry answers, python:<X.Y>-slim is used; otherwise the host's Debian suite is
    debootstrapped (tarball cached under .matrix/docker/), imported as scm-debian:<suite>, and each
    interpreter is copied in at its own path as scm-python:<X.Y>. Idempotent: existing tags are reused.
    """
    return {interp.minor: ensure_python_image(interp, log_lines) for interp in pythons}
