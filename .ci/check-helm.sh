#!/usr/bin/env bash
# Validates the Helm chart deploy/helm/shop offline (docs/kubernetes.md, "What is
# validated"): no cluster, no Docker.
#   - helm v4.3.2, built from its Go module and cached under target/tools/;
#   - helm lint --strict with values.yaml, values-production.yaml and values-reproduce.yaml;
#   - helm template with each, with every optional part switched on, and with every part
#     pointed at an existing one; each rendered object decoded strictly (unknown fields are
#     errors) against the Kubernetes API types of k8s.io/api pinned in
#     deploy/helm/validate/go.mod;
#   - every ConfigMap taken from a repository file is byte-identical to that file;
#   - every variable the chart sets on the shop's containers is documented in
#     docs/reference/configuration.md;
#   - the generated Prometheus configuration passes promtool check config with the rules;
#   - the packaged chart (helm package follows the chart's links into the repository)
#     renders the same as the chart directory;
#   - bad values fail `helm template` with a message naming the value.
# Needs Go (the machine's; the Go module proxy, or a warm module cache).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

HELM_VERSION=v4.3.2
chart=deploy/helm/shop
tools=$root/target/tools
out=$root/target/helm
helm=$tools/helm-$HELM_VERSION/helm
validate=$tools/helm-validate
mkdir -p "$tools" "$out"
# helm's own state stays under target/, away from the user's.
export HELM_CACHE_HOME=$out/home/cache HELM_CONFIG_HOME=$out/home/config HELM_DATA_HOME=$out/home/data

command -v go > /dev/null || { echo "check-helm: Go is needed to build helm and the validator" >&2; exit 1; }
# The module version built into the binary (helm's own `version` needs release ldflags).
helm_module_version() { go version -m "$helm" 2> /dev/null | awk '$1 == "mod" { print $3 }'; }
if [ "$(helm_module_version)" != "$HELM_VERSION" ]; then
    echo "building helm $HELM_VERSION from its Go module (once; cached in $helm)"
    GOBIN=$(dirname "$helm") go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
# helm says, at every run, that it follows the chart's links into the repository
# (deploy/helm/shop/files/); that is by design, so the note is left out.
helm() {
    "$helm" "$@" 2> >(grep -v 'found symbolic link in path' >&2)
}
echo "helm $(helm_module_version) ($helm)"
(cd deploy/helm/validate && go build -o "$validate" .)

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# --- lint ----------------------------------------------------------------------------
helm lint --strict "$chart" || fail "helm lint --strict (values.yaml)"
helm lint --strict "$chart" -f "$chart/values-production.yaml" || fail "helm lint --strict (values-production.yaml)"
helm lint --strict "$chart" -f "$chart/values-reproduce.yaml" || fail "helm lint --strict (values-reproduce.yaml)"

# --- render and validate ---------------------------------------------------------------
# name|flags: the values files, then every optional part on, then every part external.
variants=(
    "small|"
    "production|-f $chart/values-production.yaml"
    "reproduce|-f $chart/values-reproduce.yaml --set loadtest.enabled=true"
    "everything-on|--set loadtest.enabled=true --set loadtest.workers=4 --set gateway.ingress.enabled=true --set gateway.ingress.host=shop.example.com --set services.backend.autoscaling.enabled=true --set prometheus.persistence.enabled=true --set database.replicas=3 --set podAntiAffinity=required --set gateway.service.type=NodePort --set gateway.service.nodePort=30080 --set alertmanager.enabled=false --set alertmanager.external.address=am:9093"
    "external|--set database.enabled=false --set database.external.contactPoints=db:9042 --set database.external.credentialsSecret=cql --set prometheus.enabled=false --set prometheus.external.url=http://prom:9090 --set alertmanager.enabled=false --set alertmanager.external.address=am:9093 --set jaeger.enabled=false --set jaeger.external.otlpEndpoint=http://otel:4318 --set jaeger.external.queryUrl=http://jaeger-query:16686 --set secrets.existingSecret=mine"
)
rendered=()
for variant in "${variants[@]}"; do
    name=${variant%%|*}
    # shellcheck disable=SC2206 # the flags are words
    flags=(${variant#*|})
    file=$out/rendered-$name.yaml
    if helm template shop "$chart" --namespace shop "${flags[@]}" > "$file"; then
        rendered+=("$file")
    else
        fail "helm template ($name)"
    fi
done
"$validate" -repo "$root" -env-doc docs/reference/configuration.md \
    -env-containers backend,cart-service,order-service,user-service,loadtest,reproduce \
    "${rendered[@]}" | tee "$out/validate.log" || fail "strict validation of the rendered manifests"

# Every repository file the chart takes with values.yaml was compared: the gateway's three,
# the rules, Alertmanager's, Grafana's two provisioning files and its dashboards, Jaeger's.
rules=(observability/prometheus/rules/*.yml) dashboards=(grafana/dashboards/*.json)
expected=$((3 + ${#rules[@]} + 1 + 2 + ${#dashboards[@]} + 1))
grep -q "^$out/rendered-small.yaml: .*, $expected ConfigMap files byte-identical" "$out/validate.log" \
    || fail "with values.yaml, not all $expected repository files were found byte-identical in ConfigMaps (see $out/validate.log)"

# --- the generated Prometheus configuration loads, with the repository's rules -----------
# promtool comes from .ci/install-observability.sh (which CI runs before this script). The
# Debian build has no Kubernetes discovery, so the kubernetes_sd_configs blocks are swapped
# for a static target first: everything else (global, rule files, jobs, relabelling,
# alerting) is checked as generated.
command -v promtool > /dev/null || bash .ci/install-observability.sh
for name in small production everything-on; do
    dir=$out/prometheus-$name
    rm -rf "$dir" && mkdir -p "$dir/rules"
    "$validate" -extract-configmap prometheus-config -static-sd "$dir" "$out/rendered-$name.yaml"
    cp observability/prometheus/rules/*.yml "$dir/rules/"
    if [ -s "$dir/prometheus.yml" ]; then
        promtool check config "$dir/prometheus.yml" > "$dir/promtool.log" 2>&1 \
            || { cat "$dir/promtool.log" >&2; fail "promtool check config of the chart's Prometheus configuration ($name)"; }
    elif [ "$name" = small ]; then
        fail "no prometheus-config ConfigMap rendered with values.yaml"
    fi
done
echo "promtool check config: the chart's Prometheus configuration and rules load"

# --- the packaged chart is the chart directory -------------------------------------------
# Rendered with every secret given, so that both renders are deterministic.
fixed=(--set secrets.serviceClientSecret=0123456789abcdef0123 --set secrets.adminPassword=a
       --set secrets.jwtPrivateKey=k --set secrets.grafanaAdminPassword=g)
rm -f "$out"/shop-*.tgz
helm package "$chart" --destination "$out" > /dev/null || fail "helm package"
helm template shop "$chart" --namespace shop "${fixed[@]}" > "$out/from-directory.yaml"
helm template shop "$out"/shop-*.tgz --namespace shop "${fixed[@]}" > "$out/from-package.yaml" \
    || fail "helm template of the packaged chart"
cmp -s "$out/from-directory.yaml" "$out/from-package.yaml" \
    || fail "the packaged chart renders differently from the chart directory (diff $out/from-directory.yaml $out/from-package.yaml)"

# --- bad values fail, naming the value ---------------------------------------------------
# expect_failure MESSAGE-PART FLAGS...: helm template must fail and print MESSAGE-PART.
expect_failure() {
    local want=$1 err
    shift
    if err=$(helm template shop "$chart" --namespace shop "$@" 2>&1 > /dev/null); then
        fail "helm template $* succeeded; expected an error naming $want"
    elif ! grep -qF -- "$want" <<< "$err"; then
        fail "helm template $* failed without naming $want: $err"
    else
        echo "refused as expected: $(grep -F -- "$want" <<< "$err" | head -1 | sed 's/.*error calling [a-z]*: //')"
    fi
}
expect_failure secrets.adminPassword --set secrets.generate=false
expect_failure secrets.serviceClientSecret --set secrets.generate=false --set secrets.adminPassword=a \
    --set secrets.grafanaAdminPassword=g --set secrets.jwtPrivateKey=k
expect_failure secrets.serviceClientSecret --set secrets.serviceClientSecret=dev-service-secret
expect_failure secrets.serviceClientSecret --set secrets.serviceClientSecret=short
expect_failure gateway.replicas --set gateway.replicas=0
expect_failure gateway.pdb.minAvailable --set gateway.pdb.minAvailable=2
expect_failure services.backend.pdb.minAvailable --set services.backend.pdb.minAvailable=2
expect_failure services.order-service.autoscaling.minReplicas --set services.order-service.autoscaling.enabled=true \
    --set services.order-service.autoscaling.minReplicas=1
expect_failure database.external.contactPoints --set database.enabled=false
expect_failure database.pdb.maxUnavailable --set database.replicas=3 --set database.pdb.maxUnavailable=2
expect_failure config.FAULTS_ENABLED -f "$chart/values-reproduce.yaml" --set config.FAULTS_ENABLED=false
expect_failure services.backend.autoscaling.enabled -f "$chart/values-reproduce.yaml" \
    --set services.backend.autoscaling.enabled=true
expect_failure termination.terminationGracePeriodSeconds --set termination.terminationGracePeriodSeconds=10
expect_failure STORAGE --set config.STORAGE=memory
expect_failure podAntiAffinity --set podAntiAffinity=sometimes
expect_failure loadtest.workers --set loadtest.enabled=true --set loadtest.workers=0
# values.schema.json: a misspelt or unknown value is an error, not silently ignored.
expect_failure "'replica' not allowed" --set services.backend.replica=3
expect_failure "'lower' does not match" --set config.lower=x

if [ "$failures" -gt 0 ]; then
    echo "check-helm: $failures failed" >&2
    exit 1
fi
echo "check-helm: the chart lints, renders and validates strictly; bad values are refused"
