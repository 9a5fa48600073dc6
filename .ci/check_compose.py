"""Static checks of docker-compose.yml that need no Docker engine (run by check-compose.sh).

    python check_compose.py CHECK

CHECK is one of:
  paths      every host path the file uses (bind mounts, build contexts, Dockerfiles,
             env_file, file-based configs and secrets) exists inside the repository;
  targets    every Dockerfile target a service builds exists in that Dockerfile;
  variables  every environment variable set for the shop's services and the load tester,
             in docker-compose.yml and in their Dockerfile stages, is listed in
             docs/reference/configuration.md (first cell of a table row, in backticks:
             the rule of xtask's configuration_reference test);
  images     every image is pinned to a version (a tag other than `latest`, or a digest).

Prints one line per problem and exits 1 when there is any. Paths are relative to the
repository root, which is the working directory. Needs ruamel.yaml (check-jsonschema's
YAML parser, in target/venv-compose).
"""

import re
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path.cwd()
COMPOSE = ROOT / "docker-compose.yml"
REFERENCE = ROOT / "docs/reference/configuration.md"
# The Dockerfile targets of our own binaries: their settings must be documented.
SHOP_TARGETS = {"backend", "user-service", "cart-service", "order-service", "loadtester"}


def load_compose():
    # The safe loader resolves anchors and `<<` merge keys, as Compose does.
    return YAML(typ="safe", pure=True).load(COMPOSE.read_text())


def services(compose):
    return (compose.get("services") or {}).items()


def build_of(service):
    """(context, dockerfile, target) of a service's build, or None."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = build.get("context", ".")
    return context, build.get("dockerfile", "Dockerfile"), build.get("target")


def inside_repository(path_text, base=ROOT):
    """The resolved path when it is a plain path inside the repository, else None."""
    if "$" in path_text or path_text.startswith("~") or "://" in path_text:
        return None
    path = (base / path_text).resolve()
    try:
        path.relative_to(ROOT.resolve())
    except ValueError:
        return None
    return path


def check_path(problems, where, path_text, base=ROOT):
    path = inside_repository(path_text, base)
    if path is None:
        problems.append(f"{where}: {path_text} is not a plain path inside the repository")
    elif not path.exists():
        problems.append(f"{where}: {path_text} does not exist")


def is_bind_source(source):
    return source.startswith((".", "/", "~"))


def check_paths(compose):
    problems = []
    checked = 0
    for name, service in services(compose):
        build = build_of(service)
        if build is not None:
            context, dockerfile, _ = build
            check_path(problems, f"{name}: build.context", context)
            check_path(problems, f"{name}: build.dockerfile", dockerfile, ROOT / context)
            checked += 2
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry if isinstance(entry, str) else entry.get("path")
            if isinstance(entry, dict) and entry.get("required") is False:
                continue
            check_path(problems, f"{name}: env_file", path)
            checked += 1
        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
                if ":" in volume and is_bind_source(source):
                    check_path(problems, f"{name}: volume", source)
                    checked += 1
            elif volume.get("type") == "bind":
                check_path(problems, f"{name}: volume", volume.get("source", ""))
                checked += 1
    for kind in ("configs", "secrets"):
        for name, entry in (compose.get(kind) or {}).items():
            if "file" in entry:
                check_path(problems, f"{kind}.{name}: file", entry["file"])
                checked += 1
    return problems, f"{checked} host paths"


def dockerfile_stages(path):
    """{stage name: (base, [ENV variable names])}, names lower case, in file order."""
    stages = {}
    current = None
    for line in join_continuations(path.read_text()):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        instruction = words[0].upper()
        if instruction == "FROM":
            args = [w for w in words[1:] if not w.startswith("--")]
            base = args[0].lower() if args else ""
            name = args[2].lower() if len(args) >= 3 and args[1].upper() == "AS" else None
            current = name or f"#{len(stages)}"
            stages[current] = (base, [])
        elif instruction == "ENV" and current is not None:
            stages[current][1].extend(env_names(line[len(words[0]):].strip()))
    return stages


def join_continuations(text):
    logical = ""
    for raw in text.splitlines():
        if raw.strip().startswith("#") and not logical:
            yield raw
            continue
        if raw.rstrip().endswith("\\"):
            logical += raw.rstrip()[:-1] + " "
        else:
            yield logical + raw
            logical = ""
    if logical:
        yield logical


def env_names(arguments):
    """Names set by an ENV instruction: `K=V K2=V2` or the legacy `K V`."""
    if "=" not in arguments.split()[0]:
        return [arguments.split()[0]]
    return [m.group(1) for m in re.finditer(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", arguments)]


def check_targets(compose):
    problems = []
    checked = 0
    for name, service in services(compose):
        build = build_of(service)
        if build is None or build[2] is None:
            continue
        context, dockerfile, target = build
        path = (ROOT / context / dockerfile).resolve()
        if not path.is_file():
            problems.append(f"{name}: Dockerfile {path} not found")
            continue
        checked += 1
        if target.lower() not in dockerfile_stages(path):
            problems.append(f"{name}: target {target!r} is not a stage of {path.relative_to(ROOT)}")
    return problems, f"{checked} build targets"


def documented_variables():
    names = set()
    for line in REFERENCE.read_text().splitlines():
        cell = line.strip()
        if cell.startswith("| `"):
            name = cell[3:].split("`", 1)[0]
            if re.fullmatch(r"[A-Z0-9_]+", name):
                names.add(name)
    return names


def environment_names(service):
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return list(environment)
    return [entry.split("=", 1)[0] for entry in environment]


def stage_chain(stages, target):
    """The stage and the stages it is built FROM, within the Dockerfile."""
    chain = []
    while target in stages and target not in chain:
        chain.append(target)
        target = stages[target][0]
    return chain


def check_variables(compose):
    documented = documented_variables()
    problems = []
    checked = set()
    for name, service in services(compose):
        build = build_of(service)
        if build is None or build[2] not in SHOP_TARGETS:
            continue
        context, dockerfile, target = build
        sources = [(f"{name}: environment", environment_names(service))]
        stages = dockerfile_stages((ROOT / context / dockerfile).resolve())
        for stage in stage_chain(stages, target.lower()):
            sources.append((f"{name}: Dockerfile stage {stage!r} ENV", stages[stage][1]))
        for where, names in sources:
            for variable in names:
                checked.add(variable)
                if variable not in documented:
                    problems.append(
                        f"{where}: {variable} is not listed in {REFERENCE.relative_to(ROOT)}"
                    )
    return problems, f"{len(checked)} variables"


def check_images(compose):
    problems = []
    checked = 0
    for name, service in services(compose):
        image = service.get("image")
        if image is None:
            continue
        checked += 1
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag is None or tag == "latest" or "$" in image:
            problems.append(f"{name}: image {image} is not pinned to a version")
    return problems, f"{checked} images"


CHECKS = {
    "paths": check_paths,
    "targets": check_targets,
    "variables": check_variables,
    "images": check_images,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        print(f"usage: {sys.argv[0]} {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problems, what = CHECKS[sys.argv[1]](load_compose())
    for problem in problems:
        print(f"  {problem}")
    print(f"  {what} checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
