"""A tiny kustomize for the tests: ``render(root)`` builds a kustomization root as ``kustomize build`` (``kubectl
kustomize``) does, for the features manifests/ uses, and refuses what the real one refuses.

Features: ``resources`` (files, and directories that are kustomization roots of their own, built first and then
given this root's transformers), ``configMapGenerator`` / ``secretGenerator`` (``files``, ``literals``, ``envs``,
``type``, ``options``: ``labels``, ``annotations``, ``disableNameSuffixHash``), ``namespace`` and ``labels``. Any
other key is an AssertionError, so a feature it cannot emulate fails instead of being skipped silently. Generated
names carry no hash suffix here.

Refusals (:class:`Refused`), kustomize v5's rules (api/internal/loader/fileloader.go, api/resmap):

* a resource directory equal to or containing a root on the chain that led to it ("cycle detected: candidate
  root … contains visited root …"): ``resources: [../]`` from manifests/monitoring/ was that (attack39b F1;
  kubernetes-sigs/kustomize#5975: by design, and ``--load-restrictor LoadRestrictionsNone`` does not lift it);
* a file (resource, generator ``files``/``envs``) outside its root ("is not in or below": the default load
  restrictor), or missing ("no such file or directory");
* a directory without a kustomization file;
* two objects with one id (kind, namespace, name) in one build ("already registered id").

``given`` maps a path to a text read in place of the disk's: the tests build manifests/ with a ``secret.env``
made from the template without writing one into the checkout (the operator's own, git-ignored, stays theirs).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {
    "apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "secretGenerator",
}
GENERATOR_KEYS = {"name", "files", "literals", "envs", "type", "options"}
OPTION_KEYS = {"labels", "annotations", "disableNameSuffixHash"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


class Refused(Exception):
    """What ``kustomize build`` refuses; the message holds the gist of kustomize's own."""


class _Build:
    def __init__(self, given: Mapping[Path, str]) -> None:
        self.given = {Path(p).resolve(): text for p, text in given.items()}

    def read(self, root: Path, rel: str) -> str:
        """The text of file ``rel`` of ``root``: in or below ``root``, and there (or ``given``)."""
        path = (root / rel).resolve()
        if not _within(path, root):
            raise Refused(f"security; file '{path}' is not in or below '{root}'")
        if path in self.given:
            return self.given[path]
        if not path.is_file():
            raise Refused(f"{rel}: lstat {path}: no such file or directory")
        return path.read_text(encoding="utf-8")

    def root(self, root: Path, chain: tuple[Path, ...]) -> list[dict[str, Any]]:
        root = root.resolve()
        name = next((n for n in KUSTOMIZATION_FILES if (root / n).is_file()), None)
        if name is None:
            raise Refused(f"unable to find one of {list(KUSTOMIZATION_FILES)} in directory '{root}'")
        kustomization = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
        unknown = set(kustomization) - SUPPORTED_KEYS
        assert not unknown, f"{root / name}: kustomization keys the test loader does not emulate: {unknown}"

        objects: list[dict[str, Any]] = []
        for rel in kustomization.get("resources", []):
            candidate = (root / rel).resolve()
            if candidate.is_dir():
                for visited in (*chain, root):
                    if _within(visited, candidate):
                        raise Refused(f"accumulating resources from '{rel}': cycle detected: candidate root "
                                      f"'{candidate}' contains visited root '{visited}'")
                objects.extend(self.root(candidate, (*chain, root)))
            else:
                text = self.read(root, rel)
                objects.extend(doc for doc in yaml.safe_load_all(text) if doc is not None)
        for kind, gens in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
            for gen in kustomization.get(gens, []):
                objects.append(self.generated(root, kind, gen))
        _refuse_repeated_ids(objects, root)
        _transform(objects, kustomization)
        return objects

    def generated(self, root: Path, kind: str, gen: dict[str, Any]) -> dict[str, Any]:
        unknown = set(gen) - GENERATOR_KEYS | set(gen.get("options", {})) - OPTION_KEYS
        assert not unknown, f"generator options the test loader does not emulate: {unknown}"
        data: dict[str, str] = {}
        for entry in gen.get("files", []):
            key, _, rel = entry.rpartition("=")
            data[key or Path(rel).name] = self.read(root, rel)
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        for rel in gen.get("envs", []):
            data.update(_env_file(rel, self.read(root, rel)))
        options = gen.get("options", {})
        meta: dict[str, Any] = {"name": gen["name"]}
        for field in ("labels", "annotations"):
            if options.get(field):
                meta[field] = dict(options[field])
        if kind == "ConfigMap":
            return {"apiVersion": "v1", "kind": kind, "metadata": meta, "data": data}
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "type": gen.get("type", "Opaque"),
                "data": encoded}


def render(root: Path, *, given: Mapping[Path, str] | None = None) -> list[dict[str, Any]]:
    """The objects ``kustomize build root`` would print (no hash suffixes), in its order of accumulation.
    ``given``: texts read in place of files (absolute or cwd-relative paths). Raises :class:`Refused`."""
    return _Build(given or {}).root(Path(root), ())


def _within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _env_file(name: str, text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise Refused(f"{name}: invalid env line (not KEY=VALUE): {line[:20]!r}…")
            out[key.strip()] = value
    return out


def _refuse_repeated_ids(objects: list[dict[str, Any]], root: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        meta = obj.get("metadata", {})
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        if key in seen:
            raise Refused(f"{root}: may not add resource with an already registered id: {'/'.join(key)}")
        seen.add(key)


def _transform(objects: list[dict[str, Any]], kustomization: dict[str, Any]) -> None:
    namespace = kustomization.get("namespace")
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        elif namespace and obj["kind"] == "Namespace":  # kustomize renames the Namespace object too
            meta["name"] = namespace
        if namespace:  # and the subjects of a binding that are ServiceAccounts
            for subject in obj.get("subjects", []) if obj["kind"] in {"RoleBinding", "ClusterRoleBinding"} else ():
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        for spec in kustomization.get("labels", []):
            meta.setdefault("labels", {}).update(spec["pairs"])
            if spec.get("includeSelectors"):
                raise AssertionError("includeSelectors is not emulated (and selectors are immutable)")
            if spec.get("includeTemplates") and obj["kind"] in WORKLOADS:
                template_meta = obj["spec"]["template"].setdefault("metadata", {})
                template_meta.setdefault("labels", {}).update(spec["pairs"])
