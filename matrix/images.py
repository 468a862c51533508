"""Docker images for the matrix: base images (seeded offline when no registry answers) and cell images.

Three layers, each reused whenever it already exists:

  scm-debian:<suite>   `debootstrap --variant=minbase <host suite>` from the host's own Debian
                       mirror, with the interpreters' runtime libraries, then `docker import`.
                       The rootfs tarball is cached under .matrix/docker/.
  scm-python:<X.Y>     dockerfiles/python.Dockerfile: that base + the host's pyenv interpreter
                       copied at the SAME path (pyenv builds are not relocatable), or, where a
                       registry answers, the official python:<X.Y>-slim as-is.
  scm-cell:<hash>      dockerfiles/cell.Dockerfile: + a venv at /env with the cell's pins. The tag
                       is a content hash of what goes in, so a warm run builds nothing.

The app sources are never in an image: `cell_container()` bind-mounts apps/ read-only at /apps,
so editing an app never needs a rebuild. The CA bundle ($PIP_CERT) is handed to builds as a
BuildKit secret (or a read-only bind mount in the no-BuildKit fallback) and never lands in a
layer; without $PIP_CERT nothing is passed. Every docker call goes through `matrix.docker`.

`prepare_image()` mirrors `matrix.envs.prepare_env()`: same errors (EnvUnsupported when no
release fits that Python, EnvError otherwise), same "installed = what pip freeze says".
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
from dataclasses import dataclass, field

from . import docker
from .interpreters import RELEASED
from .envs import (_UNSUPPORTED_HINTS, EnvError, EnvUnsupported, InstallStep, _uv, era_cutoffs, install_steps,
                   parse_freeze)
from .interpreters import Interpreter
from .paths import APPS_DIR, CACHE_DIR, REPO

log = logging.getLogger("matrix.images")

DOCKERFILES = os.path.join(REPO, "dockerfiles")
PYTHON_DOCKERFILE = os.path.join(DOCKERFILES, "python.Dockerfile")
CELL_DOCKERFILE = os.path.join(DOCKERFILES, "cell.Dockerfile")
CELL_SCRIPT = os.path.join(DOCKERFILES, "cell-install.sh")
DOCKER_CACHE = os.path.join(CACHE_DIR, "docker")
IMAGE_FORMAT = 1  # bump to invalidate every cached image tag
ENV_PYTHON = "/env/bin/python"
APPS_MOUNT = "/apps"
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
_tag_locks: dict[str, threading.Lock] = {}
_tag_locks_guard = threading.Lock()
_registry: bool | None = None  # None: not probed yet


@dataclass(frozen=True)
class DockerEnv:
    """A ready cell image; the Docker twin of `matrix.envs.Env`."""

    key: str  # the content hash (also the tag's suffix)
    tag: str  # scm-cell:<key>
    python: str  # interpreter inside the image: /env/bin/python
    installed: dict[str, str]  # distribution name (lower-case) -> version, from /env/freeze.txt
    created: bool  # False when the tag already existed (no build at all)
    seconds: float
    python_image: str = ""  # scm-python:<X.Y> it was built from
    backend: str = field(default="docker")

    @property
    def path(self) -> str:  # parity with Env.path: where the env lives (inside the image)
        return "/env"


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
                  labels: dict[str, str], log_lines: list[str], classic_ok: bool = False) -> None:
    output: list[str] = []
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


# ---------------------------------------------------------------------------------------------
# Cell images


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _steps_arg(steps: list[InstallStep]) -> str:
    """The STEPS build arg: one line per installer call, "<cutoff or -> <requirement> ..."."""
    return "\n".join(f"{step.cutoff or '-'} {' '.join(step.requirements)}" for step in steps)


def image_key(python_image_id: str, pins: list[str], exclude_newer: str | None = None,
              steps: list[InstallStep] | None = None) -> str:
    steps = steps if steps is not None else [InstallStep(tuple(sorted(pins)), exclude_newer)]
    blob = json.dumps([IMAGE_FORMAT, python_image_id, _steps_arg(steps), uv_version(),
                       _read(CELL_DOCKERFILE), _read(CELL_SCRIPT)]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_tag(python_image_id: str, pins: list[str], exclude_newer: str | None = None,
              steps: list[InstallStep] | None = None) -> str:
    """`scm-cell:<sha256(python image id, what is installed how, cell.Dockerfile, cell-install.sh, uv)[:16]>`.

    "What is installed how" is the pins with one `exclude_newer` date, or explicit install steps
    (`matrix.envs.install_steps`: one installer call per pin with the date of that release).
    """
    return f"scm-cell:{image_key(python_image_id, pins, exclude_newer, steps)}"


def _lock_for(tag: str) -> threading.Lock:
    with _tag_locks_guard:
        return _tag_locks.setdefault(tag, threading.Lock())


def _sidecar(key: str) -> str:
    return os.path.join(DOCKER_CACHE, "cells", key + ".json")


def _installed_from_image(tag: str) -> dict[str, str]:
    proc = docker._call(["run", "--rm", "--network", "none", "--entrypoint", "cat", tag, "/env/freeze.txt"],
                        check=False, timeout=120)
    if proc.returncode != 0:
        raise EnvError(f"could not read /env/freeze.txt from {tag}: {docker._last_line(proc.stderr)}")
    return parse_freeze(proc.stdout)


def _classify(exc: docker.BuildError) -> Exception:
    lines = docker.build_lines(exc.output)
    marker = [i for i, line in enumerate(lines) if "cell-install: installing the pins" in line]
    if not marker:  # it failed while setting up, before the pins' own resolution
        return EnvError(str(exc))
    lines = lines[marker[-1] + 1:]
    text = "\n".join(lines)
    if any(hint in text for hint in _UNSUPPORTED_HINTS):
        because = [line.strip(" ╰─▶").removeprefix("cause: ").strip() for line in lines
                   if "Because" in line or "because" in line]
        first = next((line for line in lines if any(h in line for h in _UNSUPPORTED_HINTS)), str(exc))
        return EnvUnsupported(_shorten(because[0] if because else first.strip()))
    return EnvError(str(exc))


def _shorten(message: str) -> str:
    """pip lists every release it saw ('(from versions: 0.1.0rc1, ... 1.45.1)'): keep the last few."""
    match = re.search(r"\(from versions: ([^)]*)\)", message)
    if match:
        versions = [v.strip() for v in match.group(1).split(",") if v.strip()]
        if len(versions) > 4:
            message = message.replace(match.group(0), "(from versions: ..., " + ", ".join(versions[-3:]) + ")")
    return message


def prepare_image(interp: Interpreter, pins: list[str], log: list[str] | None = None,
                  requires: list[str] | None = None, exclude_newer: str | None = None) -> DockerEnv:
    """Return a ready cell image for these pins on this Python, building it only if its tag is missing.

    Installs exactly like `matrix.envs.prepare_env`: by default one step per pin, each resolved
    as of its own release date (`install_steps`/`era_cutoffs`), `requires` with the oldest pin.
    An explicit `exclude_newer` date instead installs everything in one step with that limit.
    """
    log_lines = log if log is not None else []
    start = time.monotonic()
    requires = list(requires or [])
    if exclude_newer is not None:
        steps = [InstallStep(tuple(pins) + tuple(requires), exclude_newer)]
    else:
        floor = RELEASED.get(interp.minor)
        steps = install_steps(pins, requires, era_cutoffs(pins, log_lines), floor and floor + "T00:00:00Z")
    python_image = ensure_python_image(interp, log_lines)
    python_id = docker.image_id(python_image)
    if not python_id:
        raise EnvError(f"{python_image} vanished right after it was prepared")
    key = image_key(python_id, pins, steps=steps)
    tag = f"scm-cell:{key}"
    with _lock_for(tag):
        if docker.image_exists(tag):
            try:
                with open(_sidecar(key)) as fh:
                    installed = json.load(fh)["installed"]
            except (OSError, ValueError, KeyError):
                installed = _installed_from_image(tag)
            return DockerEnv(key, tag, ENV_PYTHON, installed, False, time.monotonic() - start, python_image)
        build_args = {"PYTHON_IMAGE": python_image, "PINS": " ".join(pins), "STEPS": _steps_arg(steps),
                      "UV_VERSION": uv_version()}
        labels = {f"{LABEL}.pins": " ".join(pins), f"{LABEL}.python": interp.version,
                  f"{LABEL}.python-image": python_id,
                  f"{LABEL}.steps": " ; ".join(_steps_arg(steps).splitlines())}
        try:
            try:
                _build_logged(DOCKERFILES, CELL_DOCKERFILE, tag, build_args, ca_secret(), labels, log_lines)
            except docker.BuildKitUnavailable:
                _build_cell_by_commit(python_image, tag, build_args, labels, log_lines)
        except docker.BuildError as exc:
            raise _classify(exc) from None
        except docker.DockerError as exc:
            raise EnvError(str(exc)) from None
        installed = _installed_from_image(tag)
        os.makedirs(os.path.dirname(_sidecar(key)), exist_ok=True)
        with open(_sidecar(key), "w") as fh:
            json.dump({"tag": tag, "installed": installed, "pins": pins, "python": interp.version,
                       "python_image": python_id, "steps": _steps_arg(steps).splitlines()}, fh, indent=1)
        return DockerEnv(key, tag, ENV_PYTHON, installed, True, time.monotonic() - start, python_image)


def _build_cell_by_commit(python_image: str, tag: str, build_args: dict[str, str], labels: dict[str, str],
                          log_lines: list[str]) -> None:
    """No BuildKit: the same install script in a running container (CA bind-mounted read-only), committed."""
    mounts = [(path, "/run/secrets/ca", "ro") for path in ca_secret().values()]
    env = {k: build_args[k] for k in ("PINS", "STEPS", "UV_VERSION")}
    changes = ["ENV VIRTUAL_ENV=/env",
               "ENV PATH=/env/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV PYTHONDONTWRITEBYTECODE=1"]
    changes += [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
    output: list[str] = []
    log_lines.append(f"$ (no BuildKit) sh cell-install.sh in {python_image}, then docker commit -> {tag}")
    try:
        docker.build_by_commit(python_image, tag, _read(CELL_SCRIPT), env=env, mounts=mounts, changes=changes,
                               output=output)
    finally:
        log_lines.append("".join(output)[-8000:])


def cell_container(env: DockerEnv, extra_mounts: list[tuple[str, str, str]] | None = None) -> docker.Container:
    """A Container for this cell image with apps/ bind-mounted read-only at /apps (not started yet).

    Start the app with `container.exec_popen([env.python, "-u", "/apps/<app>/app.py", ...], ...)`;
    it reaches the mock server on 127.0.0.1 because the container shares the host network.
    """
    return docker.Container(env.tag, mounts=[(APPS_DIR, APPS_MOUNT, "ro"), *(extra_mounts or [])],
                            env={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                                 "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"},
                            workdir="/apps")


def main(argv: list[str] | None = None) -> int:
    """`python -m matrix.images seed [X.Y ...]`: the offline seeding step for CI (all interpreters by default)."""
    import argparse
    import sys

    from .interpreters import discover

    parser = argparse.ArgumentParser(prog="python -m matrix.images", description=main.__doc__)
    parser.add_argument("command", choices=["seed"])
    parser.add_argument("pythons", nargs="*", help="minor versions (default: every interpreter found)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every docker command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    if docker.engine_available() is None:
        print("no Docker engine answers `docker version`", file=sys.stderr)
        return 2
    found = discover()
    missing = [m for m in args.pythons if m not in found]
    if missing:
        print(f"no interpreter for {', '.join(missing)} (found {', '.join(sorted(found))})", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    lines: list[str] = []
    try:
        tags = seed_base_images([found[m] for m in (args.pythons or sorted(found))], lines)
    except (EnvError, docker.DockerError) as exc:
        print("\n".join(lines[-20:]), file=sys.stderr)
        print(f"seeding failed: {exc}", file=sys.stderr)
        return 1
    for minor, tag in tags.items():
        print(f"{minor}\t{tag}")
    print(f"seeded in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
