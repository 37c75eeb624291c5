#!/usr/bin/env python3
"""Validates the Kubernetes manifests of deploy/kubernetes/ against their schemas, offline.

- Kubernetes' own kinds (Deployment, ConfigMap, NetworkPolicy, ...) against the JSON schemas that
  kubernetes-validate bundles for KUBERNETES_VERSION, in its strict mode: a field Kubernetes does not know fails,
  as `kubectl apply` refuses it (strict field validation is kubectl's default since 1.27).
- KEDA's ScaledObject and TriggerAuthentication and the Prometheus Operator's ServiceMonitor against the
  openAPIV3Schema of their CRDs, vendored in deploy/kubernetes/crds/, made strict the same way (an object schema
  with properties and no additionalProperties admits no other field, which is how the API server prunes and how
  strict field validation refuses), with the custom resource's metadata checked as Kubernetes' ObjectMeta.
- Every kustomization.yaml lists exactly the manifests beside it (and ../common for a variant), and uses nothing but
  `resources`: so applying a variant with `kubectl apply -k` creates exactly the objects validated here.

Any other kind fails: a manifest nothing here can check is not a manifest this project ships unchecked.
The arithmetic between the manifests and scrc's configuration is checked by tests/kubernetes.rs.

Usage: scripts/check-kubernetes.py [DIRECTORY]   (default deploy/kubernetes). Exits 1 on the first kind of error
found in any file, after reporting them all.

Dependencies (pinned in scripts/check-kubernetes.requirements.txt; .ci/run installs them into a virtualenv):
kubernetes-validate, jsonschema, PyYAML.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

# The oldest Kubernetes the manifests are for: native sidecars (init containers with restartPolicy Always) are on
# by default from 1.29; 1.30 is the oldest minor version its maintainers still supported when this was written.
KUBERNETES_VERSION = "1.30"

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR_NAME = "crds"

try:
    import jsonschema
    import kubernetes_validate
    import referencing
    import yaml
except ImportError as missing:  # pragma: no cover - depends on the machine
    print(
        f"check-kubernetes: missing Python package ({missing.name}); install them with\n"
        f"  pip install -r scripts/check-kubernetes.requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)


def load_documents(path: Path) -> list[dict]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as file:
        return [document for document in yaml.safe_load_all(file) if document]


def strict(schema):
    """The schema with `additionalProperties: false` on every object schema that lists properties and neither
    allows other fields (additionalProperties) nor keeps unknown ones (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields", False)
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


class CustomResources:
    """The vendored CRD schemas, by (apiVersion, kind), with Kubernetes' own definitions for their metadata."""

    def __init__(self, crd_dir: Path):
        definitions = kubernetes_validate.utils.schema_contents(
            f"kubernetes-json-schema/v{self._schema_version()}-local-strict/_definitions.json", KUBERNETES_VERSION
        )
        self.object_meta = {"$ref": f"{definitions['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        self.registry = referencing.Resource.from_contents(definitions) @ referencing.Registry()
        self.validators = {}
        self.sources = {}
        for path in sorted(crd_dir.glob("*.yaml")):
            (crd,) = load_documents(path)
            schema = strict(copy.deepcopy(crd["openAPIV3Schema"]))
            schema["properties"]["metadata"] = self.object_meta
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            jsonschema.Draft202012Validator.check_schema(schema)
            key = (f"{crd['group']}/{crd['version']}", crd["kind"])
            self.validators[key] = jsonschema.Draft202012Validator(schema, registry=self.registry)
            self.sources[key] = path

    @staticmethod
    def _schema_version() -> str:
        """The bundled schema directory kubernetes-validate uses for KUBERNETES_VERSION (its latest patch)."""
        versions = kubernetes_validate.utils.all_versions()
        return [v for v in versions if kubernetes_validate.utils.major_minor(v) == KUBERNETES_VERSION][-1]

    def errors(self, resource: dict) -> list[str] | None:
        """The schema errors of a custom resource, or None when no vendored CRD describes its kind."""
        validator = self.validators.get((resource.get("apiVersion"), resource.get("kind")))
        if validator is None:
            return None
        return [
            f"{'.'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(validator.iter_errors(resource), key=lambda error: list(error.absolute_path))
        ]


def kubernetes_errors(resource: dict) -> list[str] | None:
    """The schema errors of one of Kubernetes' own kinds, or None when kubernetes-validate has no schema for it."""
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path) or "(root)"
        return [f"{path}: {error.message}"]
    return []


def check_kustomization(path: Path) -> list[str]:
    """A kustomization lists exactly the manifests of its directory, plus ../common in a variant, and nothing but."""
    (kustomization,) = load_documents(path)
    problems = []
    extra = set(kustomization) - {"apiVersion", "kind", "resources"}
    if extra:
        problems.append(f"uses {sorted(extra)}: only `resources` is allowed, so the manifests apply as written")
    listed = kustomization.get("resources", [])
    beside = sorted(p.name for p in path.parent.glob("*.yaml") if p.name != "kustomization.yaml")
    files = sorted(entry for entry in listed if not entry.startswith("../"))
    if files != beside:
        problems.append(f"lists {files}, but the directory holds {beside}")
    for entry in listed:
        if entry.startswith("../") and not (path.parent / entry / "kustomization.yaml").is_file():
            problems.append(f"includes {entry}, which has no kustomization.yaml")
    return problems


def errors_of(resource: dict, crds: CustomResources) -> list[str]:
    """Schema errors of any resource, Kubernetes' own or custom; no schema at all is an error too."""
    errors = kubernetes_errors(resource)
    if errors is None:
        errors = crds.errors(resource)
    return ["no schema"] if errors is None else errors


# Mistakes each check must catch, made to copies of the real manifests before they are validated: a validator that
# let one of these through would pass anything. (file, kind, what the mistake is, how to make it)
MISTAKES = [
    ("engine-dind/deployment.yaml", "Deployment", "a misspelt field",
     lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriod=60)),
    ("engine-host/deployment.yaml", "Deployment", "a probe port of the wrong type",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(port=[9464])),
    ("common/configmap.yaml", "ConfigMap", "a number where Kubernetes wants a string",
     lambda d: d["data"].update(RUNNER_MAX_PARALLEL=8)),
    ("common/keda.yaml", "ScaledObject", "a misspelt field",
     lambda d: d["spec"].update(cooldownPerod=300)),
    ("common/keda.yaml", "ScaledObject", "trigger metadata that is not a string",
     lambda d: d["spec"]["triggers"][0]["metadata"].update(lagThreshold=16)),
    ("common/keda.yaml", "ScaledObject", "a string where the CRD wants an integer",
     lambda d: d["spec"].update(maxReplicaCount="15")),
    ("common/keda.yaml", "ScaledObject", "a label of the wrong type in the metadata",
     lambda d: d["metadata"]["labels"].update(tier=1)),
    ("common/keda.yaml", "TriggerAuthentication", "a secret reference without its key",
     lambda d: d["spec"]["secretTargetRef"][0].pop("key")),
    ("common/servicemonitor.yaml", "ServiceMonitor", "a scheme outside the CRD's enum",
     lambda d: d["spec"]["endpoints"][0].update(scheme="ftp")),
    ("common/servicemonitor.yaml", "ServiceMonitor", "a malformed interval",
     lambda d: d["spec"]["endpoints"][0].update(interval="15 seconds")),
]


def self_test(directory: Path, crds: CustomResources) -> list[str]:
    """The mistakes above that the checks did not catch."""
    missed = []
    for file, kind, mistake, make in MISTAKES:
        (resource,) = [d for d in load_documents(directory / file) if d["kind"] == kind]
        if errors_of(resource, crds):
            continue  # broken already: the validation below reports it
        make(resource)
        if not errors_of(resource, crds):
            missed.append(f"{file} {kind}: {mistake} passed")
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    if errors_of(unknown, crds) != ["no schema"]:
        missed.append("a kind without a schema passed")
    return missed


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "deploy" / "kubernetes"
    crds = CustomResources(directory / CRD_DIR_NAME)
    missed = self_test(directory, crds)
    for problem in missed:
        print(f"FAIL self-test: {problem}")
    if not missed:
        print(f"ok   self-test: {len(MISTAKES) + 1} deliberate mistakes, each caught")
    failures = len(missed)
    checked = 0
    for path in sorted(directory.rglob("*.yaml")):
        relative = path.relative_to(directory)
        if relative.parts[0] == CRD_DIR_NAME:
            continue
        if path.name == "kustomization.yaml":
            problems = check_kustomization(path)
            for problem in problems:
                print(f"FAIL {relative}: {problem}")
            failures += len(problems)
            continue
        for resource in load_documents(path):
            name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
            errors = kubernetes_errors(resource)
            against = f"Kubernetes {KUBERNETES_VERSION}"
            if errors is None:
                errors = crds.errors(resource)
                against = f"{crds.sources.get((resource.get('apiVersion'), resource.get('kind')))}"
            if errors is None:
                print(f"FAIL {relative} {name}: no schema for {resource.get('apiVersion')} {resource.get('kind')}")
                failures += 1
                continue
            checked += 1
            for error in errors:
                print(f"FAIL {relative} {name}: {error}")
            failures += len(errors)
            if not errors:
                print(f"ok   {relative} {name} (against {Path(against).name if '/' in against else against})")
    print(f"{checked} resources checked, {failures} problems")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
