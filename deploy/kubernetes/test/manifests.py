"""Checks that deploy/kubernetes's manifests and Dockerfile fit together, beyond what the API
schema says, and writes what the entry-point test needs.

    python manifests.py DEPLOY_DIR OUT_JSON

Prints one `ok   ...` or `FAIL ...` line per check. OUT_JSON gets the shard count, the shard
and merge containers' args and env, and the Secret's variable names. Needs PyYAML (installed
with kubernetes-validate by requirements.txt).
"""

import json
import pathlib
import re
import sys

import yaml

deploy = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])


def load(name):
    return yaml.safe_load((deploy / name).read_text())


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)


secret = load("secret.yaml")
pvc = load("pvc.yaml")
shards = load("shard-job.yaml")
merge = load("merge-job.yaml")
toolbox = load("toolbox-pod.yaml")
dockerfile = (deploy / "Dockerfile").read_text()

shard_spec = shards["spec"]
shard_pod = shard_spec["template"]["spec"]
merge_pod = merge["spec"]["template"]["spec"]
shard_box = shard_pod["containers"][0]
merge_box = merge_pod["containers"][0]
pods = {"shard-job": shard_pod, "merge-job": merge_pod, "toolbox-pod": toolbox["spec"]}

count = int(shard_box["args"][3])
check(shard_spec.get("completionMode") == "Indexed", "the shard Job is Indexed")
check(
    shard_spec["completions"] == count,
    f"the shard Job's completions ({shard_spec['completions']}) are its N ({count})",
)
check(1 <= shard_spec["parallelism"] <= count, "its parallelism is between 1 and N")
check(shard_box["args"][0] == "shard" and merge_box["args"][0] == "merge", "args start with shard / merge")
check(int(merge_box["args"][2]) == count, f"the merge Job merges N = {count} shards")
check(merge_box["args"][1] == shard_box["args"][2], "the merge reads the shards' runs folder")

# The image's entry point runs: no container overrides it, and the Dockerfile installs it.
check(
    all("command" not in c for c in (shard_box, merge_box)),
    "the Jobs keep the image's entry point (no command)",
)
check(
    re.search(r'^ENTRYPOINT \["/usr/local/bin/assay-entrypoint"\]', dockerfile, re.M) is not None
    and "deploy/kubernetes/entrypoint.sh /usr/local/bin/assay-entrypoint" in dockerfile,
    "the Dockerfile installs entrypoint.sh as its ENTRYPOINT",
)
stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
check(
    len(stages) == 2 and stages[0].startswith("rust:") and stages[1] == "debian:bookworm-slim",
    "the Dockerfile builds in rust:*-slim-bookworm and runs in debian:bookworm-slim",
)
user = re.search(r"^USER (\d+)", dockerfile, re.M)
check(user is not None and user.group(1) != "0", "the image runs as a non-root user")

# Every pod: the same image, non-root as the image's user, the claim, the Secret's variables.
secret_name = secret["metadata"]["name"]
claim = pvc["metadata"]["name"]
for name, pod in pods.items():
    box = pod["containers"][0]
    check(box["image"] == shard_box["image"], f"{name} uses the image {shard_box['image']}")
    security = pod.get("securityContext", {})
    check(
        security.get("runAsNonRoot") is True
        and user is not None
        and str(security.get("runAsUser")) == user.group(1),
        f"{name} runs as the image's user",
    )
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    check(claims == [claim], f"{name} mounts the claim {claim}")
    refs = [e["secretRef"]["name"] for e in box.get("envFrom", []) if "secretRef" in e]
    check(refs == [secret_name], f"{name} takes its environment from the Secret {secret_name}")
check(pvc["spec"]["accessModes"] == ["ReadWriteMany"], "the claim is ReadWriteMany (pods on several nodes)")
keys = sorted(secret.get("stringData", {}))
check(
    keys and all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", k) for k in keys),
    f"the Secret's keys are variable names: {', '.join(keys)}",
)

out.write_text(
    json.dumps(
        {
            "count": count,
            "shard_args": shard_box["args"],
            "merge_args": merge_box["args"],
            "shard_env": {e["name"]: e["value"] for e in shard_box.get("env", [])},
            "merge_env": {e["name"]: e["value"] for e in merge_box.get("env", [])},
            "secret_keys": keys,
            "mount": next(
                m["mountPath"]
                for m in shard_box["volumeMounts"]
                for v in shard_pod["volumes"]
                if v["name"] == m["name"] and "persistentVolumeClaim" in v
            ),
        }
    )
)
