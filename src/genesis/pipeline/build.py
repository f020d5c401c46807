"""`nox -s build`: the sdist and wheel, a CycloneDX SBOM, and the container image.

The image is installed from a wheelhouse prepared here, on the host, for the base image's
Python (`pip download --only-binary`): builds inside a container cannot always reach or trust
the package index, and `--no-index` makes the installed set exactly the set the SBOM lists.
The engine is docker buildx when a daemon answers, else podman. Tags follow
docker/metadata-action: semver tags for a release, the branch name sanitised, `sha-<7>`.

Run it as `python -m genesis.pipeline.build --help`; the nox session is a shell over `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path
from typing import IO

DEFAULT_IMAGE = "ghcr.io/genesis-delivery/genesis"
# The Dockerfile's own default: used when nothing names a base image.
DEFAULT_BASE_IMAGE = "python:3.12.10-slim-bookworm"
# A Debian base made by debootstrap, for machines that reach no image registry.
LOCAL_BASE_IMAGE = "localhost/genesis-base:bookworm"
LOCAL_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
ENV_BASE_IMAGE = "GENESIS_BASE_IMAGE"
ENV_ENGINE = "GENESIS_IMAGE_ENGINE"
# Relative to the build context (the checkout): the only directory .dockerignore lets in.
WHEELHOUSE = Path("dist/wheelhouse")
# The extras the image installs; the Dockerfile names the same ones.
IMAGE_EXTRAS = "redis"
ENGINES = ("docker", "podman")
_MAX_TAG = 128

# Run inside the base image: which wheels it can install.
_PYTHON_PROBE = (
    "import json, platform, sys; "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'full_version': '%d.%d.%d' % sys.version_info[:3], "
    "'machine': platform.machine(), 'libc': platform.libc_ver()}))"
)


class BuildError(RuntimeError):
    """A build step failed; the message names the step and carries the tool's own words."""


@dataclass(frozen=True)
class TargetPython:
    """The interpreter of the base image, as pip's `--python-version` and `--platform` see it."""

    version: str
    machine: str
    glibc: tuple[int, int]
    # Debian's 3.11.2 is not the host's 3.11.7: markers such as python_full_version < "3.11.3"
    # (redis needs async-timeout below it) must be judged for this one.
    full_version: str = ""

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker variables as they are inside the image."""
        return {
            "python_version": self.version,
            "python_full_version": self.full_version or f"{self.version}.0",
            "platform_machine": self.machine,
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "extra": "",
        }

    @property
    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc accepts, newest first (pip tries them in order)."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        # Older wheels carry only the legacy aliases of 2_17, 2_12 and 2_5.
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.machine}" for m, name in legacy.items() if m <= minor]
        return tags


@dataclass(frozen=True)
class GitInfo:
    revision: str
    branch: str | None
    tag: str | None


@dataclass(frozen=True)
class BuildOptions:
    root: Path
    image: str = DEFAULT_IMAGE
    base_image: str | None = None
    engine: str | None = None
    # A release gets the semver tags; None: when HEAD (or GITHUB_REF) is the tag v<version>.
    release: bool | None = None
    extra_tags: Sequence[str] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True)
class BuildResult:
    version: str
    sdist: Path
    wheel: Path
    sbom: Path
    wheelhouse: Path
    engine: str
    base_image: str
    tags: list[str]
    image_size: int

    def summary(self) -> str:
        lines = [
            f"sdist:  {self.sdist}",
            f"wheel:  {self.wheel}",
            f"sbom:   {self.sbom} (CycloneDX 1.6)",
            f"image:  built with {self.engine} on {self.base_image}",
            *(f"  tag:  {tag}" for tag in self.tags),
            f"  size: {self.image_size / 1_000_000:.1f} MB ({self.image_size} bytes)",
        ]
        return "\n".join(lines)


def _exec(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | None = None,
    stdout: int | IO[bytes] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """The one place that starts tools: a list of arguments built here, never a shell."""
    return subprocess.run(  # noqa: S603 - fixed tool names, arguments from our own options
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=stdin,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=stdout is None,
        check=False,
        timeout=timeout,
    )


def _run(
    command: Sequence[str],
    what: str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | None = None,
    stdout: IO[bytes] | None = None,
) -> str:
    result = _exec(command, cwd=cwd, env=env, stdin=stdin, stdout=stdout)
    if result.returncode != 0:
        output = result.stderr or result.stdout or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout if isinstance(result.stdout, str) else ""


def _succeeds(command: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    try:
        return _exec(command, env=env, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---- tags (docker/metadata-action conventions) -------------------------------------------


def sanitize_tag(name: str) -> str:
    """A ref name as a tag: what metadata-action does (invalid runs become '-', 128 chars)."""
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", name).lstrip(".-")[:_MAX_TAG]


_PEP440 = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[.-]?((?:a|b|rc|dev|post)\.?\d*))?(?:\+.*)?$")


def semver_tags(version: str) -> list[str]:
    """`{{version}}`, `{{major}}.{{minor}}`, `{{major}}` and `latest`, as metadata-action's
    type=semver makes them: a pre-release gets only its full version, and `{{major}}` is left
    out for 0.x (the guard metadata-action's README recommends: 0.x promises no stability)."""
    match = _PEP440.match(version)
    if match is None:
        raise BuildError(f"version {version!r} is not X.Y.Z[pre]: cannot derive semver tags")
    major, minor, patch, pre = match.groups()
    if pre:
        return [f"{major}.{minor}.{patch}-{pre.replace('.', '')}"]
    tags = [f"{major}.{minor}.{patch}", f"{major}.{minor}"]
    if major != "0":
        tags.append(major)
    return [*tags, "latest"]


def image_tags(
    image: str,
    version: str,
    git: GitInfo,
    *,
    release: bool,
    extra: Sequence[str] = (),
) -> list[str]:
    """Full references, highest priority first (semver, then branch, then sha)."""
    names: list[str] = semver_tags(version) if release else []
    if git.branch:
        names.append(sanitize_tag(git.branch))
    if re.fullmatch(r"[0-9a-f]{7,40}", git.revision):
        names.append(f"sha-{git.revision[:7]}")
    names.extend(sanitize_tag(name) for name in extra)
    unique = list(dict.fromkeys(name for name in names if name))
    if not unique:
        raise BuildError("no tag to give the image: not a release, no branch, no git revision")
    repository = image.lower()
    return [f"{repository}:{name}" for name in unique]


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    result = _exec([git, "-C", str(root), *args])
    return result.stdout.strip() or None if result.returncode == 0 else None


def git_info(root: Path, environ: Mapping[str, str]) -> GitInfo:
    """The revision and ref; GitHub's variables win, because Actions checks out a detached HEAD."""
    revision = environ.get("GITHUB_SHA") or _git(root, "rev-parse", "HEAD") or "unknown"
    ref_type, ref_name = environ.get("GITHUB_REF_TYPE"), environ.get("GITHUB_REF_NAME")
    if ref_type == "branch" and ref_name:
        return GitInfo(revision, ref_name, None)
    if ref_type == "tag" and ref_name:
        return GitInfo(revision, None, ref_name)
    return GitInfo(
        revision,
        _git(root, "symbolic-ref", "--short", "-q", "HEAD"),
        _git(root, "describe", "--tags", "--exact-match", "HEAD"),
    )


# ---- engines and base images -------------------------------------------------------------


def detect_engine(preferred: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """docker when buildx and a daemon answer, else podman; `preferred` must exist."""
    if preferred:
        if preferred not in ENGINES:
            raise BuildError(f"unknown engine {preferred!r}: choose one of {', '.join(ENGINES)}")
        if shutil.which(preferred) is None:
            raise BuildError(f"engine {preferred!r} is not on PATH")
        return preferred
    docker = shutil.which("docker")
    # A docker CLI alone is common (no daemon, no buildx): both must answer.
    if (
        docker
        and _succeeds([docker, "buildx", "version"], env)
        and _succeeds([docker, "info"], env)
    ):
        return "docker"
    if shutil.which("podman"):
        return "podman"
    raise BuildError(
        "no container engine: install docker with buildx, or podman (Debian: podman runc)"
    )


def image_exists(engine: str, ref: str, env: Mapping[str, str] | None = None) -> bool:
    return _succeeds([engine, "image", "inspect", ref], env)


def apt_mirror(sources: Sequence[Path] = ()) -> str:
    """The Debian mirror this machine's apt uses (debootstrap needs one), else deb.debian.org."""
    candidates = sources or (
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
        Path("/etc/apt/sources.list"),
    )
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s+main", text, re.MULTILINE
        )
        if match and "security" not in match.group(1):
            return match.group(1)
    return "http://deb.debian.org/debian"


def ensure_debian_base(
    ref: str = LOCAL_BASE_IMAGE,
    *,
    engine: str = "podman",
    suite: str = "bookworm",
    mirror: str | None = None,
    packages: Sequence[str] = LOCAL_BASE_PACKAGES,
    env: Mapping[str, str] | None = None,
) -> str:
    """A Debian image from debootstrap, made once and then found by name: by default the base
    of the genesis image (python3); with other `packages`, any image of Debian packages, such
    as the Prometheus and Alertmanager image the compose stack's test runs
    (docs/observability.md)."""
    if image_exists(engine, ref, env):
        return ref
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BuildError(
            f"{ref} is missing and debootstrap is not installed (apt-get install debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="genesis-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(rootfs),
                mirror or apt_mirror(),
            ],
            f"debootstrap {suite}",
        )
        # The package cache and lists are build leftovers, a third of the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        with tempfile.TemporaryFile() as archive:
            tar = shutil.which("tar") or "tar"
            _run([tar, "-C", str(rootfs), "-c", "."], "tar of the base rootfs", stdout=archive)
            archive.seek(0)
            _run(
                [engine, "import", "-", ref],
                f"{engine} import {ref}",
                env=env,
                stdin=archive.fileno(),
            )
    return ref


def target_python(
    engine: str, base_image: str, env: Mapping[str, str] | None = None
) -> TargetPython:
    """Ask the base image itself which Python, machine and glibc it has."""
    out = _run(
        [
            engine,
            "run",
            "--rm",
            "--network=none",
            "--entrypoint",
            "python3",
            base_image,
            "-c",
            _PYTHON_PROBE,
        ],
        f"probing the Python of {base_image}",
        env=env,
    )
    probe = json.loads(out.strip().splitlines()[-1])
    libc, libc_version = probe["libc"]
    if libc != "glibc":
        raise BuildError(f"{base_image} has {libc or 'an unknown libc'}; genesis needs glibc")
    major, minor = (int(part) for part in libc_version.split(".")[:2])
    return TargetPython(
        probe["version"], probe["machine"], (major, minor), probe.get("full_version", "")
    )


# ---- distributions, wheelhouse, SBOM -----------------------------------------------------


def build_distributions(root: Path, dist: Path) -> tuple[Path, Path]:
    """`python -m build`: the sdist, then the wheel built from it (so the sdist is complete)."""
    dist.mkdir(parents=True, exist_ok=True)
    for stale in [*dist.glob("genesis-*.tar.gz"), *dist.glob("genesis-*.whl")]:
        stale.unlink()
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(root)], "python -m build")
    sdists, wheels = list(dist.glob("genesis-*.tar.gz")), list(dist.glob("genesis-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise BuildError(f"python -m build left {sdists + wheels} in {dist}, not one of each")
    return sdists[0], wheels[0]


def _download(requirements: Sequence[str], wheelhouse: Path, target: TargetPython) -> None:
    platforms = [arg for tag in target.platforms for arg in ("--platform", tag)]
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--dest",
            str(wheelhouse),
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            target.full_version or target.version,
            *platforms,
            *requirements,
        ],
        f"pip download (wheels for Python {target.full_version or target.version}, "
        f"{target.machine})",
    )


def missing_for_target(wheels: Sequence[Path], target: TargetPython) -> list[str]:
    """Requirements the image's Python needs that no wheel in `wheels` satisfies.

    pip judges environment markers by the interpreter running it, not by --python-version, so
    a dependency under `python_full_version < "3.11.3"` is skipped on a 3.11.7 host even for a
    3.11.2 image. Extras are left out: pip resolved the requested ones already.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    metadata = [read_wheel(path) for path in wheels]
    present = {meta.name: Version(meta.version) for meta in metadata}
    environment = target.marker_environment()
    missing: list[str] = []
    for meta in metadata:
        for line in meta.requires:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            have = present.get(_normalize(requirement.name))
            if have is None or not requirement.specifier.contains(have, prereleases=True):
                requirement.marker = None
                missing.append(str(requirement))
    return sorted(set(missing))


def fill_wheelhouse(
    wheel: Path, wheelhouse: Path, target: TargetPython, extras: str = IMAGE_EXTRAS
) -> list[Path]:
    """The wheel and every dependency, as wheels for the image's Python, in a fresh folder."""
    shutil.rmtree(wheelhouse, ignore_errors=True)
    wheelhouse.mkdir(parents=True)
    # Replicas share rate limits, the cache and jobs through Redis: the image needs it.
    _download([f"{wheel}[{extras}]" if extras else str(wheel)], wheelhouse, target)
    for _ in range(10):  # each round adds what the last one's wheels need; a few suffice
        missing = missing_for_target(sorted(wheelhouse.glob("*.whl")), target)
        if not missing:
            return sorted(wheelhouse.glob("*.whl"))
        _download(missing, wheelhouse, target)
    raise BuildError(f"the wheelhouse still lacks {missing} for Python {target.full_version}")


@dataclass(frozen=True)
class WheelMetadata:
    name: str
    version: str
    summary: str
    license: str | None
    requires: list[str]
    sha256: str


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_wheel(path: Path) -> WheelMetadata:
    with zipfile.ZipFile(path) as archive:
        entry = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(entry).decode("utf-8"))
    license_text = headers.get("License-Expression") or headers.get("License")
    if not license_text or len(license_text) > 100 or "\n" in license_text:
        # A pasted license text is no identifier: fall back to the trove classifier.
        classifiers = [
            c.rsplit("::", 1)[-1].strip()
            for c in headers.get_all("Classifier") or []
            if c.startswith("License ::")
        ]
        license_text = classifiers[0] if classifiers else None
    return WheelMetadata(
        name=_normalize(headers["Name"]),
        version=headers["Version"],
        summary=headers.get("Summary") or "",
        license=license_text,
        requires=headers.get_all("Requires-Dist") or [],
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def write_sbom(wheels: Sequence[Path], target: TargetPython, destination: Path) -> Path:
    """A CycloneDX 1.6 JSON SBOM of exactly the wheels the image installs, with the
    dependency graph their metadata declares (markers evaluated for the image's Python)."""
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
        from cyclonedx.model import HashAlgorithm, HashType
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.output.json import JsonV1Dot6
        from packageurl import PackageURL
        from packaging.requirements import Requirement
    except ImportError as error:
        raise BuildError(
            f"the SBOM needs {error.name}: install genesis with its dev extra "
            "(cyclonedx-python-lib, packaging)"
        ) from None
    licenses = LicenseFactory()
    metadata = [read_wheel(path) for path in wheels]
    components = {
        meta.name: Component(
            name=meta.name,
            version=meta.version,
            type=ComponentType.APPLICATION if meta.name == "genesis" else ComponentType.LIBRARY,
            bom_ref=f"pkg:pypi/{meta.name}@{meta.version}",
            purl=PackageURL("pypi", name=meta.name, version=meta.version),
            description=meta.summary or None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=meta.sha256)],
            licenses=[licenses.make_from_string(meta.license)] if meta.license else [],
        )
        for meta in metadata
    }
    if "genesis" not in components:
        raise BuildError("the wheelhouse holds no genesis wheel")
    root = components.pop("genesis")
    bom = Bom()
    bom.metadata.component = root
    bom.components.update(components.values())
    environment = target.marker_environment()
    for meta in metadata:
        needs = []
        for line in meta.requires:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            needed = components.get(_normalize(requirement.name))
            if needed is not None:
                needs.append(needed)
        owner = root if meta.name == "genesis" else components[meta.name]
        bom.register_dependency(owner, needs)
    destination.write_text(JsonV1Dot6(bom).output_as_string(indent=2), encoding="utf-8")
    return destination


# ---- the image ---------------------------------------------------------------------------


def build_image(
    engine: str,
    root: Path,
    tags: Sequence[str],
    build_args: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> None:
    args = [arg for key, value in build_args.items() for arg in ("--build-arg", f"{key}={value}")]
    tag_args = [arg for tag in tags for arg in ("--tag", tag)]
    if engine == "docker":
        command = [engine, "buildx", "build", "--load"]
    else:
        # The OCI format has no HEALTHCHECK; the docker format keeps it.
        command = [engine, "build", "--format", "docker"]
    _run(
        [*command, "--file", str(root / "Dockerfile"), *args, *tag_args, str(root)],
        f"{engine} build",
        env=env,
    )


def image_size(engine: str, ref: str, env: Mapping[str, str] | None = None) -> int:
    return int(_run([engine, "image", "inspect", "--format", "{{.Size}}", ref], "inspect", env=env))


@contextlib.contextmanager
def _exclusive(dist: Path) -> Iterator[None]:
    """One build per checkout at a time: two would share dist/ and the wheelhouse."""
    dist.mkdir(parents=True, exist_ok=True)
    with (dist / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _created(environ: Mapping[str, str]) -> str:
    # SOURCE_DATE_EPOCH: reproducible builds pin the label instead of stamping the clock.
    epoch = environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch) if epoch else time.time(), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(options: BuildOptions) -> BuildResult:
    root = options.root.resolve()
    env = options.environ
    engine = detect_engine(options.engine or env.get(ENV_ENGINE), env)
    base_image = options.base_image or env.get(ENV_BASE_IMAGE) or DEFAULT_BASE_IMAGE
    dist = root / "dist"
    with _exclusive(dist):
        sdist, wheel = build_distributions(root, dist)
        version = wheel.name.split("-")[1]
        target = target_python(engine, base_image, env)
        wheels = fill_wheelhouse(wheel, root / WHEELHOUSE, target)
        sbom = write_sbom(wheels, target, dist / f"genesis-{version}.cdx.json")
        git = git_info(root, env)
        release = options.release
        if release is None:
            release = git.tag in {version, f"v{version}"}
        tags = image_tags(options.image, version, git, release=release, extra=options.extra_tags)
        build_image(
            engine,
            root,
            tags,
            {
                "BASE_IMAGE": base_image,
                "VERSION": version,
                "REVISION": git.revision,
                "CREATED": _created(env),
            },
            env,
        )
    return BuildResult(
        version=version,
        sdist=sdist,
        wheel=wheel,
        sbom=sbom,
        wheelhouse=root / WHEELHOUSE,
        engine=engine,
        base_image=base_image,
        tags=tags,
        image_size=image_size(engine, tags[0], env),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nox -s build --",
        description="Build the sdist, wheel, CycloneDX SBOM and container image of genesis.",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout (default: .)")
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"repository (default {DEFAULT_IMAGE})"
    )
    parser.add_argument(
        "--base-image",
        help=f"base image (default ${ENV_BASE_IMAGE}, else {DEFAULT_BASE_IMAGE})",
    )
    parser.add_argument(
        "--local-base",
        action="store_true",
        help=f"use {LOCAL_BASE_IMAGE}, making it with debootstrap if missing (no registry)",
    )
    parser.add_argument("--engine", choices=ENGINES, help=f"default ${ENV_ENGINE}, else detected")
    parser.add_argument(
        "--release",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the semver tags (default: when HEAD is tagged v<version>)",
    )
    parser.add_argument("--tag", action="append", default=[], help="an extra tag (repeatable)")
    args = parser.parse_args(argv)
    try:
        base_image = args.base_image
        if args.local_base:
            engine = detect_engine(args.engine or os.environ.get(ENV_ENGINE))
            base_image = ensure_debian_base(engine=engine)
        result = build(
            BuildOptions(
                root=args.root,
                image=args.image,
                base_image=base_image,
                engine=args.engine,
                release=args.release,
                extra_tags=args.tag,
            )
        )
    except BuildError as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
