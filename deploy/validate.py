"""Validate the deployment files offline: `python deploy/validate.py` (also run by .ci/run).

- deploy/kubernetes/: every file the kustomization lists (and no other), each document against the
  Kubernetes JSON schemas that the kubernetes-validate package ships (strict: unknown fields fail),
  CRDs against the schemas in deploy/kubernetes/schemas/ (KEDA's ScaledObject); with kubectl on
  PATH, also what `kubectl kustomize` renders;
- docker-compose.yml: `docker-compose config` with the documented .env (from .env.example plus a
  secret key), so a typo or an unset required variable fails here instead of at `docker compose up`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ("1.29", "1.37")  # the oldest and newest release the manifests are checked against
CRD_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json"}


def manifests(folder: Path = KUBERNETES) -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every resource the kustomization lists; every other YAML file is an error."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    unlisted = {p.name for p in folder.glob("*.yaml")} - set(listed) - {"kustomization.yaml"}
    if unlisted:
        raise ValueError(f"{folder}: not in kustomization.yaml: {', '.join(sorted(unlisted))}")
    return [(name, doc) for name in listed for doc in yaml.safe_load_all((folder / name).read_text()) if doc]


def rendered(folder: Path = KUBERNETES) -> list[tuple[str, dict[str, Any]]] | None:
    """What `kubectl kustomize` makes of the folder (labels and images applied), when kubectl is installed."""
    if shutil.which("kubectl") is None:
        return None
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True)
    return [("kubectl kustomize", doc) for doc in yaml.safe_load_all(out.stdout) if doc]


def problems(documents: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per document that fails its schema, naming the file, the resource and the field."""
    return [
        f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {p}"
        for name, doc in documents
        for p in _problems(doc)
    ]


def _problems(doc: dict[str, Any]) -> list[str]:
    crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if crd is not None:
        return _crd_problems(doc, json.loads((KUBERNETES / "schemas" / crd).read_text()))
    import kubernetes_validate

    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(f"Kubernetes {version}: {exc.message} at {'.'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            found.append(f"Kubernetes {version}: no schema: {exc}")
    return found


def _crd_problems(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{error.message} at {'.'.join(map(str, error.path))}" for error in validator.iter_errors(doc)]


def compose_config(env_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose [args] config` on a copy of docker-compose.yml beside a .env holding `env_text`."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(ROOT / "docker-compose.yml", Path(folder) / "docker-compose.yml")
        (Path(folder) / ".env").write_text(env_text)
        return subprocess.run(["docker-compose", *args, "config"], capture_output=True, text=True, cwd=folder)


def documented_env() -> str:
    """The .env the README's setup makes: .env.example plus a secret key."""
    return (ROOT / ".env.example").read_text() + "ASSAY_SECRET_KEY=a-long-random-value-for-the-check\n"


def main() -> int:
    documents = manifests()
    found = problems(documents) + problems(rendered() or [])
    out = compose_config(documented_env(), "--profile", "fake-model")
    if out.returncode != 0:
        found.append(f"docker-compose.yml: {out.stderr.strip()}")
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(
            f"{len(documents)} Kubernetes resources valid (Kubernetes {', '.join(KUBERNETES_VERSIONS)}); "
            "docker-compose.yml valid"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
