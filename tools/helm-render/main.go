// Command helm-render renders a Helm chart the way `helm template` does, for the machines and CI
// runs that have no `helm`: Go's text/template with the sprig functions and the Helm functions
// the project's charts use (include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup).
//
// It builds offline from Debian's packages, in GOPATH mode:
//
//	apt-get install -y golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o bin/helm-render .
//
// Usage:
//
//	helm-render [-name RELEASE] [-namespace NS] [-f values.yaml]... [-notes] CHART_DIR
//
// It prints every rendered manifest as a YAML document headed by `# Source: <chart>/<path>`
// (templates/tests/* included, as `helm template` does), and with -notes prints NOTES.txt
// instead. It does not validate values.schema.json: tests/deploy does that with jsonschema.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.33.0", "Kubernetes version for .Capabilities")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	var files valueFiles
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-name R] [-namespace NS] [-f values.yaml]... CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *name, *namespace, *kubeVersion, files, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

// readYAML reads a YAML file into a map (an empty file gives an empty map).
func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges override into base like Helm: maps merge key by key, anything else is
// replaced, and a null in override deletes the key.
func coalesce(base, override map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		if om, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = coalesce(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// apiVersions answers .Capabilities.APIVersions.Has.
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func render(chartDir, name, namespace, kubeVersion string, files []string, notesOnly bool) (string, error) {
	meta, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	chartName, _ := meta["name"].(string)
	if chartName == "" {
		return "", errors.New("Chart.yaml has no name")
	}
	values, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		override, err := readYAML(f)
		if err != nil {
			return "", err
		}
		values = coalesce(values, override)
	}
	// .Chart uses the Go field names of Helm's chart.Metadata.
	chart := map[string]interface{}{}
	for k, v := range meta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	major, minor := "1", "33"
	if parts := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": name, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": kubeVersion, "GitVersion": kubeVersion, "Major": major, "Minor": minor,
			},
			"APIVersions": apiVersions{"v1", "apps/v1", "batch/v1", "policy/v1",
				"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1"},
		},
	}

	// Every file under templates/, parsed into one set, named like Helm names them.
	var paths []string
	root := filepath.Join(chartDir, "templates")
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)

	t := template.New(chartName)
	funcs := funcMap(t)
	t.Funcs(funcs).Option("missingkey=zero")
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, _ := filepath.Rel(chartDir, p)
		tname := chartName + "/" + filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if _, err := t.New(tname).Parse(string(data)); err != nil {
			return "", err
		}
		names = append(names, tname)
	}

	var out strings.Builder
	for _, tname := range names {
		base := filepath.Base(tname)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notesOnly {
			continue
		}
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") &&
			!strings.HasSuffix(base, ".tpl") {
			continue
		}
		scope := coalesce(top, map[string]interface{}{
			"Template": map[string]interface{}{"Name": tname, "BasePath": chartName + "/templates"},
		})
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, tname, scope); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if isNotes {
			out.WriteString(text)
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", tname, strings.TrimRight(text, "\n"))
	}
	return out.String(), nil
}

// funcMap is sprig's text functions, less env/expandenv (as in Helm), plus Helm's own.
func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	// As in `helm template`: there is no cluster to look objects up in.
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		// A fresh template that also knows every named template of the chart.
		nt := template.New("tpl").Funcs(funcMap(t)).Option("missingkey=zero")
		for _, x := range t.Templates() {
			if x.Tree == nil {
				continue
			}
			if _, err := nt.AddParseTree(x.Name(), x.Tree); err != nil {
				return "", err
			}
		}
		if _, err := nt.New("tpl-body").Parse(text); err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := nt.ExecuteTemplate(&buf, "tpl-body", data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}
