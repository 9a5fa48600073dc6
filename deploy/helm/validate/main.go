// Command validate checks the manifests that `helm template` rendered from the shop chart
// (deploy/helm/shop), offline, for .ci/check-helm.sh. Every object must decode STRICTLY
// into the Kubernetes API type of its apiVersion and kind, from the k8s.io/api release
// pinned in go.mod: an unknown or duplicated field, a value of the wrong type or a kind
// this release does not know is an error. Every ConfigMap annotated `shop.dev/source` (a
// repository directory) must hold, under each key, the byte-identical content of the file
// of that name in that directory. Every environment variable set on a container named in
// -env-containers must be one that the configuration reference (-env-doc) documents.
//
// Usage:
//
//	validate -repo ROOT -env-doc docs/reference/configuration.md \
//	    -env-containers backend,cart-service,... rendered.yaml...
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// SourceAnnotation names the repository directory a ConfigMap's files come from.
const SourceAnnotation = "shop.dev/source"

func main() {
	repo := flag.String("repo", ".", "repository root (for shop.dev/source directories)")
	envDoc := flag.String("env-doc", "", "the configuration reference (Markdown); empty: no environment check")
	envContainers := flag.String("env-containers", "", "comma-separated names of the containers that run the shop's binaries")
	extract := flag.String("extract-configmap", "", "instead of validating: write the files of this ConfigMap into the directory given as the first argument")
	staticSD := flag.Bool("static-sd", false, "with -extract-configmap: in YAML files, replace every kubernetes_sd_configs by static_configs (for a promtool built without Kubernetes discovery)")
	flag.Parse()
	if *extract != "" {
		if flag.NArg() != 2 {
			fatal(errors.New("usage: validate -extract-configmap NAME DIR rendered.yaml"))
		}
		if err := extractConfigMap(*extract, flag.Arg(0), flag.Arg(1), *staticSD); err != nil {
			fatal(err)
		}
		return
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: validate [flags] rendered.yaml...")
		os.Exit(2)
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

	var documented map[string]bool
	if *envDoc != "" {
		var err error
		if documented, err = documentedVariables(*envDoc); err != nil {
			fatal(err)
		}
	}
	wanted := map[string]bool{}
	for _, name := range strings.Split(*envContainers, ",") {
		if name != "" {
			wanted[name] = true
		}
	}

	var problems []string
	for _, file := range flag.Args() {
		objects, identical, envSeen := 0, 0, map[string]bool{}
		data, err := os.ReadFile(file)
		if err != nil {
			fatal(err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fatal(fmt.Errorf("%s: %w", file, err))
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s", file, firstLine(doc, err)))
				continue
			}
			objects++
			name := gvk.Kind
			if m, ok := obj.(interface{ GetName() string }); ok {
				name += "/" + m.GetName()
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				n, p := checkSource(*repo, cm)
				identical += n
				for _, msg := range p {
					problems = append(problems, fmt.Sprintf("%s: %s: %s", file, name, msg))
				}
			}
			if documented != nil {
				for _, c := range containers(obj) {
					if !wanted[c.Name] {
						continue
					}
					envSeen[c.Name] = true
					for _, env := range c.Env {
						if !documented[env.Name] {
							problems = append(problems, fmt.Sprintf(
								"%s: %s: container %s sets %s, which %s does not document",
								file, name, c.Name, env.Name, *envDoc))
						}
					}
				}
			}
		}
		if objects == 0 {
			problems = append(problems, file+": no Kubernetes object in it")
		}
		if documented != nil && len(envSeen) == 0 {
			problems = append(problems, file+": none of the -env-containers is rendered, so no environment was checked")
		}
		seen := make([]string, 0, len(envSeen))
		for c := range envSeen {
			seen = append(seen, c)
		}
		sort.Strings(seen)
		fmt.Printf("%s: %d objects decoded strictly, %d ConfigMap files byte-identical to the repository's, environment checked on %s\n",
			file, objects, identical, strings.Join(seen, ", "))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "error:", p)
		}
		os.Exit(1)
	}
}

// extractConfigMap writes each key of the ConfigMap called name in file to dir/key; a
// rendering without that ConfigMap writes nothing.
func extractConfigMap(name, dir, file string, staticSD bool) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var cm corev1.ConfigMap
		if err := sigsyaml.Unmarshal(doc, &cm); err != nil || cm.Kind != "ConfigMap" || cm.Name != name {
			continue
		}
		for key, value := range cm.Data {
			if staticSD && (strings.HasSuffix(key, ".yml") || strings.HasSuffix(key, ".yaml")) {
				var tree any
				if err := sigsyaml.Unmarshal([]byte(value), &tree); err != nil {
					return fmt.Errorf("%s: %s: %w", name, key, err)
				}
				out, err := sigsyaml.Marshal(replaceKubernetesSD(tree))
				if err != nil {
					return err
				}
				value = string(out)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(key)), []byte(value), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

// replaceKubernetesSD swaps each kubernetes_sd_configs list for one static target.
func replaceKubernetesSD(node any) any {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if k == "kubernetes_sd_configs" {
				delete(n, k)
				n["static_configs"] = []any{map[string]any{"targets": []any{"kubernetes-sd.invalid:80"}}}
				continue
			}
			n[k] = replaceKubernetesSD(v)
		}
	case []any:
		for i, v := range n {
			n[i] = replaceKubernetesSD(v)
		}
	}
	return node
}

// checkSource compares each key of a ConfigMap annotated with shop.dev/source with the
// repository file of that name; it returns how many matched and what did not.
func checkSource(repo string, cm *corev1.ConfigMap) (int, []string) {
	dir, ok := cm.Annotations[SourceAnnotation]
	if !ok {
		return 0, nil
	}
	var problems []string
	if len(cm.Data)+len(cm.BinaryData) == 0 {
		problems = append(problems, "annotated "+SourceAnnotation+" but empty")
	}
	matched := 0
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		path := filepath.Join(repo, dir, key)
		want, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("key %s: %v", key, err))
			continue
		}
		if !bytes.Equal(want, []byte(cm.Data[key])) {
			problems = append(problems, fmt.Sprintf("key %s differs from %s", key, filepath.Join(dir, key)))
			continue
		}
		matched++
	}
	for key := range cm.BinaryData {
		problems = append(problems, fmt.Sprintf("key %s is binary; repository files are text", key))
	}
	return matched, problems
}

// containers lists the containers (init containers included) of a workload's pod template.
func containers(obj runtime.Object) []corev1.Container {
	var spec *corev1.PodSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		spec = &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		spec = &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		spec = &o.Spec.Template.Spec
	case *batchv1.Job:
		spec = &o.Spec.Template.Spec
	case *batchv1.CronJob:
		spec = &o.Spec.JobTemplate.Spec.Template.Spec
	case *corev1.Pod:
		spec = &o.Spec
	default:
		return nil
	}
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}

// documentedVariables reads the `VARIABLE` names in the first column of the reference's tables.
func documentedVariables(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)` \\|")
	names := map[string]bool{}
	for _, m := range row.FindAllSubmatch(data, -1) {
		names[string(m[1])] = true
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no documented variable found (rows like | `NAME` | ...)", path)
	}
	return names, nil
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// firstLine names the object an error is about by the "# Source:" line helm puts above it.
func firstLine(doc []byte, err error) string {
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "# Source: ") {
			return strings.TrimPrefix(line, "# Source: ") + ": " + err.Error()
		}
	}
	return err.Error()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
