"""Summarises rendered Kubernetes manifests for the deployment test: one JSON object per file
with what the test asserts on (kinds and names, each workload's probes, ports, volumes, claim
templates and environment, the HPA's target, the PDB's and NetworkPolicy's selectors and ports,
the Secrets' data and the ConfigMaps' files).

usage: k8s_summary.py RENDERED.yaml [...]
"""
import json
import sys

import yaml


def summarise(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    out = {"objects": [], "workloads": {}, "hpas": [], "pdbs": [], "policies": [], "secrets": {}, "configmaps": {}}
    for d in docs:
        kind, meta = d["kind"], d["metadata"]
        out["objects"].append({"kind": kind, "name": meta["name"], "namespace": meta.get("namespace"), "labels": meta.get("labels", {})})
        spec = d.get("spec", {})
        if kind in ("StatefulSet", "Deployment"):
            pod = spec["template"]
            containers = []
            for c in pod["spec"]["containers"]:
                containers.append({
                    "name": c["name"],
                    "args": c.get("args", []),
                    "env": {e["name"]: e.get("value", "<from>") for e in c.get("env", [])},
                    "ports": {p["name"]: p["containerPort"] for p in c.get("ports", [])},
                    "readiness": c.get("readinessProbe", {}).get("httpGet"),
                    "liveness": c.get("livenessProbe", {}).get("httpGet"),
                    "requests": c.get("resources", {}).get("requests", {}),
                    "mounts": {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])},
                })
            volumes = {}
            for v in pod["spec"].get("volumes", []):
                source = v.get("configMap", {}).get("name") or v.get("secret", {}).get("secretName")
                volumes[v["name"]] = source
            out["workloads"][meta["name"]] = {
                "kind": kind,
                "selector": spec["selector"]["matchLabels"],
                "pod_labels": pod["metadata"].get("labels", {}),
                "containers": containers,
                "volumes": volumes,
                "claims": [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])],
                "termination_grace": pod["spec"].get("terminationGracePeriodSeconds"),
            }
        elif kind == "HorizontalPodAutoscaler":
            out["hpas"].append({"target": spec["scaleTargetRef"], "min": spec.get("minReplicas"), "max": spec["maxReplicas"]})
        elif kind == "PodDisruptionBudget":
            out["pdbs"].append({"selector": spec["selector"]["matchLabels"]})
        elif kind == "NetworkPolicy":
            ports = sorted({p["port"] for rule in spec.get("ingress", []) for p in rule.get("ports", [])})
            out["policies"].append({"selector": spec["podSelector"]["matchLabels"], "ports": ports})
        elif kind == "Secret":
            out["secrets"][meta["name"]] = d.get("data", {})
        elif kind == "ConfigMap":
            out["configmaps"][meta["name"]] = d.get("data", {})
    return out


if __name__ == "__main__":
    print(json.dumps({path: summarise(path) for path in sys.argv[1:]}))
