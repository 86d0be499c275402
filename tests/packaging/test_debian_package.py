"""The Debian package's sources agree with the project: version, packaged config, unit, man pages.

These run in `make test` without building anything; `make deb` builds and lints the package
and `make deb-test` installs it in a clean Debian 12 chroot.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci import unavailable

import menshen
from menshen.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = ROOT / "packaging" / "debian"
UNIT = ROOT / "packaging" / "systemd" / "menshen.service"
DEFAULTS = ROOT / "milter" / "menshen" / "defaults" / "menshen.yml"
MAN8 = ROOT / "docs" / "menshen.8"
MAN5 = ROOT / "docs" / "menshen.yml.5"


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/bin/{name}") if Path(p).exists()), None
    )
    if found is None:
        unavailable(f"{name} is not installed")
    return found


def source_version() -> str:
    tree = ast.parse((ROOT / "milter" / "menshen" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError("no __version__ in milter/menshen/__init__.py")


def test_changelog_version_is_the_source_version() -> None:
    first = (DEBIAN / "changelog").read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"^menshen \(([^)]+)\) \S+; urgency=\w+$", first)
    assert match, first
    assert match.group(1) == source_version() == menshen.__version__


def test_the_package_is_native_all_and_depends_on_debian_libraries() -> None:
    assert (DEBIAN / "source" / "format").read_text(encoding="ascii").strip() == "3.0 (native)"
    control = (DEBIAN / "control").read_text(encoding="utf-8")
    assert "Architecture: all" in control
    depends = re.search(r"^Depends:(.*?)^\S", control, re.M | re.S)
    assert depends
    for package in (
        "python3-milter",
        "python3-ahocorasick",
        "python3-yaml",
        "python3-prometheus-client",
    ):
        assert package in depends.group(1)
    assert re.search(r"^Recommends: clamav-daemon,\s+postfix$", control, re.M)
    assert re.search(r"^Suggests: python3-redis \(>= 4\.3\.4\),\s+redis-server$", control, re.M)


def test_every_python_package_is_listed_in_pyproject() -> None:
    """A subpackage missing from `packages` is absent from the .deb (editable installs hide it)."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
            "packages"
        ]
    )
    source = ROOT / "milter"
    found = {
        ".".join(init.parent.relative_to(source).parts)
        for init in (source / "menshen").rglob("__init__.py")
    }
    assert found - listed == set()


def packaged_config() -> str:
    return subprocess.run(
        ["sh", str(DEBIAN / "make-config"), str(DEFAULTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def test_packaged_config_is_the_default_with_two_packaged_choices() -> None:
    shipped = flatten(yaml.safe_load(DEFAULTS.read_text(encoding="utf-8")))
    packaged = flatten(yaml.safe_load(packaged_config()))
    changed = {
        key
        for key in shipped.keys() | packaged.keys()
        if shipped.get(key, ...) != packaged.get(key, ...)
    }
    assert changed == {"audit.target", "wordlists.directory"}
    assert packaged["audit.target"] == "file"
    assert packaged["wordlists.directory"] == "/etc/menshen/wordlists"
    assert packaged["audit.file"] == "/var/log/menshen/audit.log"
    assert packaged["milter.socket"] == "unix:/var/spool/postfix/menshen/menshen.sock"


def test_packaged_config_loads(tmp_path: Path) -> None:
    text = packaged_config().replace("/etc/menshen/wordlists", str(ROOT / "wordlists"))
    path = tmp_path / "menshen.yml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.source == str(path)


def unit_values() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_unit_runs_the_daemon_as_menshen_with_postfix_group() -> None:
    unit = unit_values()
    assert unit["Type"] == ["simple"]
    assert unit["ExecStart"] == ["/usr/bin/menshen serve"]
    assert unit["ExecReload"] == ["/bin/kill -USR1 $MAINPID"]
    assert unit["User"] == unit["Group"] == ["menshen"]
    assert unit["SupplementaryGroups"] == ["postfix"]
    assert unit["StateDirectory"] == ["menshen"]
    assert set(unit["ReadWritePaths"][0].split()) == {
        "/var/spool/postfix/menshen",
        "/var/log/menshen",
    }
    assert "man:menshen(8) man:menshen.yml(5)" in unit["Documentation"]


def test_unit_is_hardened() -> None:
    unit = unit_values()
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter": "@system-service",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit.get(key) == [value], key


def test_unit_exposure_is_low() -> None:
    analyze = tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for menshen\.service: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def config_key_names() -> set[str]:
    """Every key name of the shipped configuration, except the names inside tables."""
    names: set[str] = set()

    def walk(tree: Any) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                names.add(str(key))
                if key != "categories":
                    walk(value)

    walk(yaml.safe_load(DEFAULTS.read_text(encoding="utf-8")))
    # Keys that the shipped file shows only in comments.
    return names | {"pid_file", "spool_directory", "hash_key_file", "postfix_config_directory"}


def test_man_page_documents_every_configuration_key() -> None:
    page = MAN5.read_text(encoding="utf-8").replace("\\-", "-").replace("\\(dq", '"')
    words = {word.lower() for word in re.findall(r"[A-Za-z0-9_]+", page)}  # sections: SCORING
    assert config_key_names() - words == set()


def test_man_page_documents_every_command() -> None:
    page = MAN8.read_text(encoding="utf-8")
    for command in (
        "serve",
        "check",
        "configtest",
        "reload",
        "wordlist lint",
        "wordlist test",
        "wordlist report",
        "quarantine list",
        "quarantine show",
        "quarantine release",
        "quarantine delete",
        "quota show",
        "quota reset",
        "stats",
        "version",
    ):
        assert re.search(rf"^\.B {command}\b", page, re.M), command


@pytest.mark.parametrize("page", [MAN8, MAN5], ids=["menshen.8", "menshen.yml.5"])
def test_man_pages_render_without_warnings(page: Path) -> None:
    man = tool("man")
    result = subprocess.run(
        [man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page)],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "MANWIDTH": "80"},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stderr.decode("utf-8", "replace") == ""


def test_install_lists_name_existing_files() -> None:
    for listing in ("menshen.install", "menshen.docs", "menshen.examples", "menshen.manpages"):
        for line in (DEBIAN / listing).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                pattern = line.split()[0]
                assert list(ROOT.glob(pattern)), f"{listing}: {pattern} matches nothing"
