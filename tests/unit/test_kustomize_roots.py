"""The kustomize roots the README's "Kubernetes" commands name build, by the tests' tiny kustomize
(``tests/kustomize.py``) and by the real one (``kubectl kustomize``) when kubectl is installed; the tiny one refuses
what the real one refuses; and no build takes the committed template's placeholder tokens.

attack39b F1: ``kubectl kustomize manifests/monitoring`` (README: ``kubectl apply -k manifests/monitoring/``) failed
"cycle detected: candidate root '…/manifests' contains visited root '…/manifests/monitoring'": its ``resources:
[../]`` holds the overlay itself. The suite rendered with a tiny kustomize without that rule, and only the base.
attack39b F2: ``kubectl apply -k manifests/`` built Secret ``gamead-secrets`` from the committed
secret.example.env: the template's public ``REPLACE_ME_…`` tokens, deployed without a word.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kustomize import Refused, render

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
TEMPLATE = MANIFESTS / "base" / "secret.example.env"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: the real kustomize build is "
                                   "not run (the tiny kustomize's builds above still ran)")


def readme_kubernetes() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme[readme.index("\n## Kubernetes\n"):].split("\n## ", 2)[1]


#: the directories the README's "Kubernetes" section applies, as written there
README_ROOTS = re.findall(r"^kubectl apply -k (\S+)", readme_kubernetes(), re.M)


def checkout(into: Path, *, secret: bool = True) -> Path:
    """A copy of manifests/ under ``into`` (the operator's own secret.env left out) and, with ``secret``, the
    secret.env the README's ``cp`` makes. Returns ``into``: the README's paths are relative to it."""
    shutil.copytree(MANIFESTS, into / "manifests", ignore=shutil.ignore_patterns("secret.env"))
    if secret:
        shutil.copy(TEMPLATE, into / "manifests" / "base" / "secret.env")
    return into


def kubectl_kustomize(root: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "kustomize", str(root)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def ids(objects: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of each object, a generated name's content hash (``-kt6676tk4k``) cut off."""
    def name(obj: dict[str, Any]) -> str:
        plain = obj["metadata"]["name"]
        return re.sub(r"-[a-z0-9]{10}$", "", plain) if obj["kind"] in {"ConfigMap", "Secret"} else plain
    return sorted((o["kind"], o["metadata"].get("namespace", ""), name(o)) for o in objects)


def test_the_readme_applies_the_base_and_the_monitoring_root() -> None:
    assert README_ROOTS == ["manifests/", "manifests/monitoring/"]
    assert "cp manifests/base/secret.example.env manifests/base/secret.env" in readme_kubernetes()


@pytest.mark.parametrize("root", README_ROOTS)
def test_every_root_the_readme_names_builds(tmp_path: Path, root: str) -> None:
    """Figure (F1): ``manifests/monitoring/`` → Refused "cycle detected: candidate root '…/manifests' contains
    visited root '…/manifests/monitoring'"."""
    objects = render(checkout(tmp_path) / root)
    base = ids(render(tmp_path / "manifests"))
    assert len(base) == 18 and ("Secret", "gamead", "gamead-secrets") in base
    extra = {"manifests/": set(), "manifests/monitoring/": {
        ("PrometheusRule", "gamead", "gamead"), ("ServiceMonitor", "gamead", "gamead-api"),
        ("PodMonitor", "gamead", "gamead-worker"), ("ConfigMap", "gamead", "gamead-grafana-dashboard")}}[root]
    assert set(ids(objects)) == set(base) | extra and len(objects) == len(base) + len(extra)


@needs_kubectl
@pytest.mark.parametrize("root", README_ROOTS)
def test_kubectl_builds_every_root_the_readme_names_as_the_tiny_kustomize_does(tmp_path: Path, root: str) -> None:
    """Figure (F1): ``kubectl kustomize manifests/monitoring/`` exit 1, "cycle detected"."""
    done = kubectl_kustomize(root, checkout(tmp_path))
    assert done.returncode == 0, done.stderr
    real = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert ids(real) == ids(render(tmp_path / root))


# The cycle rule and its kin, on small layouts: what one kustomize refuses, the other does too.
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {{}}\n"
LAYOUTS: dict[str, tuple[dict[str, str], str, str | None]] = {
    # name: (files, the root built, the refusal's gist or None)
    "overlay takes its parent (F1's layout)": (
        {"app/kustomization.yaml": "resources: [a.yaml]\n", "app/a.yaml": CM.format(name="a"),
         "app/overlay/kustomization.yaml": "resources: ['../', b.yaml]\n", "app/overlay/b.yaml": CM.format(name="b")},
        "app/overlay", "cycle detected"),
    "overlay takes a sibling base (the fix's layout)": (
        {"app/base/kustomization.yaml": "resources: [a.yaml]\n", "app/base/a.yaml": CM.format(name="a"),
         "app/kustomization.yaml": "resources: [base]\n",
         "app/overlay/kustomization.yaml": "resources: [../base, b.yaml]\n", "app/overlay/b.yaml": CM.format(name="b")},
        "app/overlay", None),
    "a base takes a directory holding the overlay that took it": (
        {"t/x/y/kustomization.yaml": "resources: [../../z]\n", "t/z/kustomization.yaml": "resources: [../x]\n",
         "t/x/kustomization.yaml": "resources: [a.yaml]\n", "t/x/a.yaml": CM.format(name="a")},
        "t/x/y", "cycle detected"),
    "a root takes itself": ({"s/kustomization.yaml": "resources: [./]\n"}, "s", "cycle detected"),
    "a file above the root": (
        {"app/a.yaml": CM.format(name="a"), "app/overlay/kustomization.yaml": "resources: [../a.yaml]\n"},
        "app/overlay", "is not in or below"),
    "an env file that is not there": (
        {"k/kustomization.yaml": "secretGenerator:\n  - name: s\n    envs: [secret.env]\n"}, "k", "secret.env"),
    "one object twice": (
        {"d/kustomization.yaml": "resources: [a.yaml, b.yaml]\n", "d/a.yaml": CM.format(name="a"),
         "d/b.yaml": CM.format(name="a")}, "d", "already registered id"),
}


def _lay_out(tmp_path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_tiny_kustomize_refuses_what_kustomize_refuses(tmp_path: Path, layout: str) -> None:
    """Figure: before, the tiny kustomize had no cycle rule (and took no directory at all); F1's layout built."""
    files, root, gist = LAYOUTS[layout]
    _lay_out(tmp_path, files)
    if gist is None:
        assert [o["metadata"]["name"] for o in render(tmp_path / root)] == ["a", "b"]
    else:
        with pytest.raises(Refused, match=re.escape(gist)):
            render(tmp_path / root)


@needs_kubectl
@pytest.mark.parametrize("layout", LAYOUTS)
def test_kubectl_agrees_on_every_layout(tmp_path: Path, layout: str) -> None:
    files, root, gist = LAYOUTS[layout]
    _lay_out(tmp_path, files)
    done = kubectl_kustomize(root, tmp_path)
    if gist is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode != 0 and gist in done.stderr, (done.returncode, done.stderr)


# --- F2: the Secret is the operator's, never the template -------------------------------------------------------


@pytest.mark.parametrize("root", README_ROOTS)
def test_no_root_builds_without_the_operators_secret_env(tmp_path: Path, root: str) -> None:
    """Figure (F2): before, ``kubectl kustomize manifests/`` built Secret gamead-secrets from secret.example.env
    (``nats-token=REPLACE_ME_nats_token``); now, without secret.env, the build fails naming it."""
    checkout(tmp_path, secret=False)
    with pytest.raises(Refused, match=r"secret\.env: .*no such file or directory"):
        render(tmp_path / root)
    if KUBECTL is not None:
        done = kubectl_kustomize(root, tmp_path)
        assert done.returncode != 0 and "manifests/base/secret.env: no such file or directory" in done.stderr, \
            done.stderr


def test_secret_env_is_never_committed_and_its_template_is() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    done = subprocess.run(["git", "check-ignore", "--no-index", "manifests/base/secret.env",
                           "manifests/base/secret.example.env"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    if done.returncode == 128:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    assert done.stdout.split() == ["manifests/base/secret.env"], done.stdout + done.stderr
    base = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    assert [g["envs"] for g in base["secretGenerator"]] == [["secret.env"]]


def test_every_manifests_path_the_project_names_exists() -> None:
    """After the move to manifests/base/, no path in the README, a docstring or an error message (the autoscaler's
    403 names its rbac.yaml) points at nothing; ``secret.env`` is the operator's to make. Figure: before the paths
    were updated, 12 such paths (``manifests/api.yaml``, ``manifests/nats.conf``, ``manifests/rbac.yaml``, …)."""
    named: dict[str, str] = {}
    for path in [ROOT / "README.md", *(p for d in ("gamead_core", "gamead_cli", "tests", "benchmarks")
                                       for p in (ROOT / d).rglob("*.py") if p != Path(__file__))]:
        for found in re.findall(r"manifests/[\w./-]*", path.read_text(encoding="utf-8")):
            named.setdefault(found.rstrip("./"), str(path.relative_to(ROOT)))
    assert "manifests/base/rbac.yaml" in named
    missing = {p: where for p, where in named.items()
               if not (ROOT / p).exists() and not p.endswith("secret.env")}
    assert not missing, missing


# --- F11: the objects work in whatever namespace an overlay puts them ---------------------------------------------

PINNED = re.compile(r"\.gamead\.svc|^\s*namespace:\s*gamead\s*$", re.M)


def _pinned(objects: list[dict[str, Any]]) -> list[str]:
    """Where an object still names namespace ``gamead``: a metadata or subject namespace, or a text (a config file
    in a ConfigMap) naming a ``….gamead.svc`` address or ``namespace: gamead``."""
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "namespace" and item == "gamead":
                    found.append(f"{where}.{key}")
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        elif isinstance(value, str) and (pinned := PINNED.search(value)):
            found.append(f"{where}: {pinned.group().strip()}")
    for obj in objects:
        walk(obj, f"{obj['kind']}/{obj['metadata']['name']}")
    return found


@pytest.mark.parametrize("root", README_ROOTS)
def test_an_overlay_moves_every_object_and_address_to_its_namespace(tmp_path: Path, root: str) -> None:
    """Figure (F11): an overlay ``resources: [manifests]`` + ``namespace: prod`` moved the objects, not config.yaml's
    ``nats://nats.gamead.svc.cluster.local:4222``, ``redis://valkey.gamead.svc…``, ``autoscaler.kubernetes.namespace:
    gamead`` nor nats.conf's routes ``nats-N.nats-headless.gamead.svc.cluster.local``: pods waiting for ever on a
    NATS of a namespace that does not exist, an autoscaler forbidden in ``gamead``."""
    checkout(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(f"resources: [{root}]\nnamespace: prod\n")
    objects = render(tmp_path)
    assert not _pinned(objects), _pinned(objects)
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {"prod"}
    if KUBECTL is not None:
        done = kubectl_kustomize(tmp_path, tmp_path)
        assert done.returncode == 0, done.stderr
        real = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        assert not _pinned(real), _pinned(real)
        assert ids(real) == ids(objects)
