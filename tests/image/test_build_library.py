"""genesis.pipeline.build's decisions, without building anything: tags, engines, targets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from genesis.pipeline import build as b
from genesis.pipeline.build import BuildError, GitInfo, TargetPython

GIT = GitInfo(
    revision="3aa4da4f00d1e2c3b4a5968778695a4b3c2d1e0f", branch="feature/Canary_UI", tag=None
)


def test_branch_builds_get_branch_and_sha_tags() -> None:
    assert b.image_tags("GHCR.io/Org/Genesis", "0.1.0", GIT, release=False) == [
        "ghcr.io/org/genesis:feature-Canary_UI",
        "ghcr.io/org/genesis:sha-3aa4da4",
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", ["0.1.0", "0.1", "latest"]),
        ("1.4.2", ["1.4.2", "1.4", "1", "latest"]),
        ("1.4.2rc1", ["1.4.2-rc1"]),
        ("2.0.0.dev3", ["2.0.0-dev3"]),
        ("v1.2.3", ["1.2.3", "1.2", "1", "latest"]),
    ],
)
def test_release_semver_tags(version: str, expected: list[str]) -> None:
    assert b.semver_tags(version) == expected


def test_release_tags_come_first_and_extra_tags_last() -> None:
    tags = b.image_tags(
        "genesis",
        "1.0.0",
        GitInfo("abcdef1234", None, "v1.0.0"),
        release=True,
        extra=["test", "test"],
    )
    assert tags == [
        "genesis:1.0.0",
        "genesis:1.0",
        "genesis:1",
        "genesis:latest",
        "genesis:sha-abcdef1",
        "genesis:test",
    ]


def test_a_version_that_is_not_semver_is_refused() -> None:
    with pytest.raises(BuildError, match=r"not X\.Y\.Z"):
        b.semver_tags("2024.1")


def test_no_tag_at_all_is_an_error() -> None:
    with pytest.raises(BuildError, match="no tag"):
        b.image_tags("genesis", "0.1.0", GitInfo("unknown", None, None), release=False)


@pytest.mark.parametrize(
    ("ref", "tag"),
    [
        ("main", "main"),
        ("dependabot/pip/x-1.2", "dependabot-pip-x-1.2"),
        ("-.x", "x"),
        ("a" * 200, "a" * 128),
        ("123/merge", "123-merge"),
    ],
)
def test_sanitize_tag_like_metadata_action(ref: str, tag: str) -> None:
    assert b.sanitize_tag(ref) == tag


def test_git_info_prefers_github_variables(tmp_path: Path) -> None:
    env = {"GITHUB_SHA": "f" * 40, "GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": "main"}
    assert b.git_info(tmp_path, env) == GitInfo("f" * 40, "main", None)
    env |= {"GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v0.1.0"}
    assert b.git_info(tmp_path, env) == GitInfo("f" * 40, None, "v0.1.0")


def test_git_info_reads_a_real_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "trunk")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "x")
    git("tag", "v0.1.0")
    info = b.git_info(tmp_path, {})
    assert info == GitInfo(git("rev-parse", "HEAD"), "trunk", "v0.1.0")
    assert b.git_info(tmp_path / "not-a-repo", {}) == GitInfo("unknown", None, None)


def test_platform_tags_follow_glibc() -> None:
    platforms = TargetPython("3.12", "x86_64", (2, 36)).platforms
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in platforms
    assert platforms[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert TargetPython("3.12", "aarch64", (2, 12)).platforms[-2:] == [
        "manylinux2010_aarch64",
        "manylinux1_aarch64",
    ]


def test_engine_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown engine"):
        b.detect_engine("buildah")
    # Only what is on PATH counts: an empty PATH has no engine at all.
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="not on PATH"):
        b.detect_engine("podman")
    with pytest.raises(BuildError, match="no container engine"):
        b.detect_engine()
    # A docker CLI without buildx or a daemon (as on these machines) does not count.
    fake_docker = tmp_path / "docker"
    fake_docker.write_text("#!/bin/sh\nexit 1\n")
    fake_docker.chmod(0o755)
    fake_podman = tmp_path / "podman"
    fake_podman.write_text("#!/bin/sh\nexit 0\n")
    fake_podman.chmod(0o755)
    assert b.detect_engine() == "podman"
    fake_docker.write_text("#!/bin/sh\nexit 0\n")
    assert b.detect_engine() == "docker"


def test_apt_mirror_from_either_sources_format(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    legacy = tmp_path / "sources.list"
    legacy.write_text("# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n")
    security = tmp_path / "security.sources"
    security.write_text("URIs: http://deb.debian.org/debian-security\n")
    assert b.apt_mirror([deb822]) == "http://mirror.example/debian"
    assert b.apt_mirror([tmp_path / "missing", security, legacy]) == "http://old.example/debian"
    assert b.apt_mirror([tmp_path / "missing"]) == "http://deb.debian.org/debian"
    assert b.apt_mirror().startswith("http")


def test_created_label_honours_source_date_epoch() -> None:
    assert b._created({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01T00:00:00Z"
    assert b._created({}).endswith("Z")


def test_failed_commands_carry_the_tools_words() -> None:
    with pytest.raises(BuildError, match=r"listing failed \(exit 2\):\n.*No such file"):
        b._run(["ls", "/no/such/dir"], "listing")


def test_main_reports_errors_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert b.main(["--root", str(tmp_path)]) == 1
    assert "build: no container engine" in capsys.readouterr().err
    assert b.main(["--local-base", "--root", str(tmp_path)]) == 1


def test_read_wheel_license_fallbacks(tmp_path: Path) -> None:
    import zipfile

    def wheel(name: str, headers: str) -> Path:
        path = tmp_path / f"{name}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{name}-1.0.dist-info/METADATA", headers)
        return path

    spdx = wheel("a", "Name: A_b\nVersion: 1.0\nLicense-Expression: MIT\n")
    assert b.read_wheel(spdx).license == "MIT"
    assert b.read_wheel(spdx).name == "a-b"
    pasted = wheel(
        "c",
        "Name: c\nVersion: 1.0\nLicense: " + "x" * 200 + "\n"
        "Classifier: License :: OSI Approved :: BSD License\n",
    )
    assert b.read_wheel(pasted).license == "BSD License"
    assert b.read_wheel(wheel("d", "Name: d\nVersion: 1.0\n")).license is None
    with pytest.raises(BuildError, match="no genesis wheel"):
        b.write_sbom([spdx], TargetPython("3.12", "x86_64", (2, 36)), tmp_path / "sbom.json")


def test_a_missing_base_needs_debootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    podman_binary = shutil.which("podman")
    if podman_binary is None:
        pytest.skip("podman not found: install the Debian packages 'podman runc'")
    (tmp_path / "podman").symlink_to(podman_binary)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="debootstrap is not installed"):
        b.ensure_debian_base("localhost/genesis-no-such-base:none")


def test_markers_are_judged_for_the_images_python(tmp_path: Path) -> None:
    """pip skips `python_full_version < "3.11.3"` deps on a newer host; the build must not."""
    import zipfile

    def wheel(name: str, version: str, *requires: str) -> Path:
        path = tmp_path / f"{name}-{version}-py3-none-any.whl"
        lines = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(lines) + "\n")
        return path

    redis = wheel(
        "redis",
        "8.1.0",
        'async-timeout>=4.0.3; python_full_version < "3.11.3"',
        'cryptography; extra == "ocsp"',
        "pyjwt>=2",
    )
    jwt = wheel("PyJWT", "2.9.0")
    debian = TargetPython("3.11", "x86_64", (2, 36), "3.11.2")
    newer = TargetPython("3.11", "x86_64", (2, 36), "3.11.7")
    assert b.missing_for_target([redis, jwt], debian) == ["async-timeout>=4.0.3"]
    assert b.missing_for_target([redis, jwt], newer) == []
    # A present wheel that does not satisfy the specifier is missing too.
    assert b.missing_for_target([redis, wheel("pyjwt", "1.7.1")], newer) == ["pyjwt>=2"]
    assert debian.marker_environment()["python_full_version"] == "3.11.2"
