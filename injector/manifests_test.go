package injector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const deployDir = "../deploy"

// kustomization is the part of kustomize's Kustomization that deploy/
// uses; decoding it strictly makes any other field an error, so a field
// added to a kustomization.yaml must be added (and checked) here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources,omitempty"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
	Labels []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
}

// newObject returns the Go type of a manifest's apiVersion and kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}, true
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kustomization{}, true
	}
	return nil, false
}

type manifest struct {
	file string // relative to deploy/
	obj  any
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeManifests strictly decodes every document of one file.
func decodeManifests(data []byte) ([]any, error) {
	var out []any
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		obj, ok := newObject(tm.APIVersion, tm.Kind)
		if !ok {
			return nil, fmt.Errorf("document %d: %s %s has no Go type in this test; add it", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func loadDeploy(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(p)
		if ext == ".yml" || ext == ".json" {
			t.Errorf("%s: use .yaml", p)
		}
		if ext != ".yaml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs, err := decodeManifests(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(deployDir, p)
		for _, o := range objs {
			out = append(out, manifest{file: filepath.ToSlash(rel), obj: o})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("only %d manifests in %s", len(out), deployDir)
	}
	return out
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n")
	if _, err := decodeManifests(bad); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("misspelt field: %v", err)
	}
	bad = []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\nnamePrefix: x-\n")
	if _, err := decodeManifests(bad); err == nil || !strings.Contains(err.Error(), "namePrefix") {
		t.Errorf("unchecked kustomize field: %v", err)
	}
	bad = []byte("apiVersion: example.com/v1\nkind: Widget\n")
	if _, err := decodeManifests(bad); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestKustomizeLayout: every resource and patch a kustomization names
// exists, and every manifest belongs to a kustomization.
func TestKustomizeLayout(t *testing.T) {
	all := loadDeploy(t)
	files := map[string]bool{}
	used := map[string]bool{}
	for _, m := range all {
		files[m.file] = true
	}
	for _, m := range all {
		k, ok := m.obj.(*kustomization)
		if !ok {
			continue
		}
		used[m.file] = true
		dir := filepath.Dir(m.file)
		refs := slices.Clone(k.Resources)
		for _, p := range k.Patches {
			refs = append(refs, p.Path)
		}
		for _, r := range refs {
			target := filepath.ToSlash(filepath.Clean(filepath.Join(dir, r)))
			if files[target] {
				used[target] = true
				continue
			}
			if files[target+"/kustomization.yaml"] {
				continue
			}
			t.Errorf("%s names %s, which is neither a manifest nor a kustomize directory", m.file, r)
		}
	}
	for f := range files {
		if !used[f] {
			t.Errorf("%s is not named by any kustomization.yaml", f)
		}
	}
	for _, want := range []string{"base/kustomization.yaml", "overlays/example/kustomization.yaml"} {
		if !files[want] {
			t.Errorf("missing %s", want)
		}
	}
}

// deployIndex finds the objects of deploy/.
type deployIndex struct {
	t   *testing.T
	all []manifest
}

func (d deployIndex) deployment(ns, name string) *appsv1.Deployment {
	for _, m := range d.all {
		if o, ok := m.obj.(*appsv1.Deployment); ok && o.Namespace == ns && o.Name == name && o.Spec.Template.Spec.Containers != nil {
			return o
		}
	}
	d.t.Fatalf("no Deployment %s/%s", ns, name)
	return nil
}

func (d deployIndex) service(ns, name string) *corev1.Service {
	for _, m := range d.all {
		if o, ok := m.obj.(*corev1.Service); ok && o.Namespace == ns && o.Name == name {
			return o
		}
	}
	d.t.Fatalf("no Service %s/%s", ns, name)
	return nil
}

func TestWorkloads(t *testing.T) {
	all := loadDeploy(t)
	var deployments []*appsv1.Deployment
	for _, m := range all {
		if d, ok := m.obj.(*appsv1.Deployment); ok && !strings.HasPrefix(m.file, "overlays/example/injector-image") {
			deployments = append(deployments, d)
		}
	}
	if len(deployments) < 4 {
		t.Fatalf("%d Deployments", len(deployments))
	}
	for _, d := range deployments {
		name := d.Namespace + "/" + d.Name
		for _, p := range append(append(validateMeta(d.ObjectMeta), validateMeta(d.Spec.Template.ObjectMeta)...), validatePodSpec(d.Spec.Template.Spec)...) {
			t.Errorf("%s: %s", name, p)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its template's labels %v (%v)", name, d.Spec.Selector, d.Spec.Template.Labels, err)
		}
		ps := d.Spec.Template.Spec
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod not runAsNonRoot", name)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: mounts an API token it does not need", name)
		}
		for _, c := range ps.Containers {
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s/%s: want allowPrivilegeEscalation false and all capabilities dropped", name, c.Name)
			}
			if !strings.HasPrefix(c.Image, "agw:") || len(c.Args) == 0 {
				t.Errorf("%s/%s: image %s args %v: want the agw image and a subcommand", name, c.Name, c.Image, c.Args)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: want memory request and limit", name, c.Name)
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && namedPort(c, p.HTTPGet.Port.StrVal) == 0 {
					t.Errorf("%s/%s: probe port %q is not a container port", name, c.Name, p.HTTPGet.Port.StrVal)
				}
			}
		}
	}
	// Every object's metadata is valid.
	for _, m := range all {
		if o, ok := m.obj.(metav1.Object); ok {
			om := metav1.ObjectMeta{Name: o.GetName(), Labels: o.GetLabels(), Annotations: o.GetAnnotations()}
			for _, p := range validateMeta(om) {
				t.Errorf("%s: %s", m.file, p)
			}
		}
	}
	// Every Service selects a Deployment's pods and targets its ports.
	for _, m := range all {
		svc, ok := m.obj.(*corev1.Service)
		if !ok {
			continue
		}
		var match *appsv1.Deployment
		for _, d := range deployments {
			if d.Namespace == svc.Namespace && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				match = d
			}
		}
		if match == nil || len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s/%s selects no Deployment", svc.Namespace, svc.Name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			found := false
			for _, c := range match.Spec.Template.Spec.Containers {
				found = found || namedPort(c, p.TargetPort.StrVal) != 0
			}
			if !found {
				t.Errorf("Service %s port %s targets %q, not a port of %s", svc.Name, p.Name, p.TargetPort.String(), match.Name)
			}
		}
	}
	// The PodDisruptionBudget covers the injector.
	for _, m := range all {
		if pdb, ok := m.obj.(*policyv1.PodDisruptionBudget); ok {
			d := deployIndex{t, all}.deployment(pdb.Namespace, pdb.Name)
			sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if sel == nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MinAvailable == nil || int32(pdb.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas {
				t.Errorf("PodDisruptionBudget %s does not fit its Deployment (%d replicas)", pdb.Name, *d.Spec.Replicas)
			}
		}
	}
}

// envOf returns a container's literal env.
func envOf(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("%s: env %s from a reference; the test reads literals only", c.Name, e.Name)
		}
		m[e.Name] = e.Value
	}
	return m
}

// TestControlPlaneManifests: the control plane's variables are real and its
// Service is where the injector sends sidecars.
func TestControlPlaneManifests(t *testing.T) {
	idx := deployIndex{t, loadDeploy(t)}
	d := idx.deployment("agw-system", "agw-control-plane")
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"control-plane"}) {
		t.Errorf("args %v", c.Args)
	}
	declared := declaredEnv(t, []string{"../xds/controlplane/config.go", "../internal/logging/logging.go"})
	if declared["AGW_CP_LISTEN"] == "" {
		t.Fatal("source scan found no AGW_CP_LISTEN")
	}
	vars := envOf(t, c)
	for name := range vars {
		if declared[name] == "" {
			t.Errorf("control plane env %s is not a setting of agw control-plane", name)
		}
	}
	_, port, _ := net.SplitHostPort(vars["AGW_CP_LISTEN"])
	if p, _ := strconv.Atoi(port); namedPortNumber(c, "grpc-xds") != int32(p) {
		t.Errorf("AGW_CP_LISTEN %s but container port grpc-xds %d", vars["AGW_CP_LISTEN"], namedPortNumber(c, "grpc-xds"))
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the in-memory control plane must run as one replica, recreated")
	}

	// The injector's default and configured control plane address is this
	// Service.
	svc := idx.service("agw-system", "agw-control-plane")
	host, port, err := net.SplitHostPort(DefaultConfig().XDSServer)
	if err != nil {
		t.Fatal(err)
	}
	if host != svc.Name+"."+svc.Namespace+".svc" {
		t.Errorf("injector default control plane host %s, Service %s.%s.svc", host, svc.Name, svc.Namespace)
	}
	found := false
	for _, p := range svc.Spec.Ports {
		found = found || strconv.Itoa(int(p.Port)) == port
	}
	if !found {
		t.Errorf("control plane Service has no port %s", port)
	}
}

func namedPortNumber(c corev1.Container, name string) int32 { return namedPort(c, name) }

// injectorConfig is the Config that the injector Deployment's environment
// makes, with the overlay's patch applied when given.
func injectorConfig(t *testing.T, d *appsv1.Deployment, overlay map[string]string) (Config, map[string]string) {
	t.Helper()
	vars := envOf(t, d.Spec.Template.Spec.Containers[0])
	for k, v := range overlay {
		vars[k] = v
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		t.Fatalf("injector env: %v", err)
	}
	return cfg, vars
}

func TestInjectorManifests(t *testing.T) {
	all := loadDeploy(t)
	idx := deployIndex{t, all}
	d := idx.deployment("agw-system", "agw-injector")
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"inject"}) {
		t.Errorf("args %v", c.Args)
	}
	own := map[string]bool{}
	rt := reflect.TypeOf(Config{})
	for i := range rt.NumField() {
		own[rt.Field(i).Tag.Get("env")] = true
	}
	logVars := declaredEnv(t, []string{"../internal/logging/logging.go"})
	cfg, vars := injectorConfig(t, d, nil)
	for name := range vars {
		if !own[name] && logVars[name] == "" {
			t.Errorf("injector env %s is not a setting of agw inject", name)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the Deployment's configuration: %v", err)
	}
	if cfg.Image != c.Image {
		t.Errorf("AGW_INJECT_IMAGE %s differs from the injector's own image %s", cfg.Image, c.Image)
	}
	if *d.Spec.Replicas < 2 {
		t.Error("one injector replica: with failurePolicy Fail, opted-in pods cannot start during its restarts")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: the API server may call a stopping replica")
	}
	// The certificate files are in the mounted Secret.
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(cfg.CertFile, m.MountPath+"/") && strings.HasPrefix(cfg.KeyFile, m.MountPath+"/") {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("certificate %s and key %s are not under a volume mount", cfg.CertFile, cfg.KeyFile)
	}
	var secret string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name && v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if secret == "" || filepath.Base(cfg.CertFile) != corev1.TLSCertKey || filepath.Base(cfg.KeyFile) != corev1.TLSPrivateKeyKey {
		t.Errorf("webhook certificate: want tls.crt and tls.key of a kubernetes.io/tls Secret, got %s %s from %q", cfg.CertFile, cfg.KeyFile, secret)
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	p, _ := strconv.Atoi(port)
	for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS || namedPort(c, probe.HTTPGet.Port.StrVal) != int32(p) {
			t.Errorf("probe %+v: want HTTPS on the webhook port %d", probe, p)
		}
	}

	// The webhook configuration.
	svc := idx.service("agw-system", "agw-injector")
	var whc *admissionregistrationv1.MutatingWebhookConfiguration
	for _, m := range all {
		if o, ok := m.obj.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
			whc = o
		}
	}
	if whc == nil {
		t.Fatal("no MutatingWebhookConfiguration")
	}
	paths := map[string]admissionregistrationv1.MutatingWebhook{}
	for _, w := range whc.Webhooks {
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("%s: failurePolicy %v, want Fail (a pod that asked for the sidecar must not start without it)", w.Name, w.FailurePolicy)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds < 1 || *w.TimeoutSeconds > 10 {
			t.Errorf("%s: timeoutSeconds %v, want 1..10", w.Name, w.TimeoutSeconds)
		}
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s: sideEffects must be None", w.Name)
		}
		if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
			t.Errorf("%s: admissionReviewVersions %v, want [v1] (the handler speaks v1 only)", w.Name, w.AdmissionReviewVersions)
		}
		if w.NamespaceSelector == nil {
			t.Errorf("%s: no namespaceSelector", w.Name)
		}
		if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
			!slices.Equal(w.Rules[0].Resources, []string{"pods"}) || !slices.Equal(w.Rules[0].APIGroups, []string{""}) {
			t.Errorf("%s: rules %+v, want pod CREATE only", w.Name, w.Rules)
		}
		s := w.ClientConfig.Service
		if s == nil || s.Name != svc.Name || s.Namespace != svc.Namespace || s.Path == nil || s.Port == nil || *s.Port != svc.Spec.Ports[0].Port {
			t.Errorf("%s: clientConfig %+v does not point at Service %s/%s port %d", w.Name, s, svc.Namespace, svc.Name, svc.Spec.Ports[0].Port)
			continue
		}
		paths[*s.Path] = w
	}
	ns, okNS := paths[PathNamespace]
	pod, okPod := paths[PathPod]
	if !okNS || !okPod || len(paths) != 2 {
		t.Fatalf("webhook paths %v, want %s and %s", reflect.ValueOf(paths).MapKeys(), PathNamespace, PathPod)
	}
	nsSel, _ := metav1.LabelSelectorAsSelector(ns.NamespaceSelector)
	podNSSel, _ := metav1.LabelSelectorAsSelector(pod.NamespaceSelector)
	podObjSel, _ := metav1.LabelSelectorAsSelector(pod.ObjectSelector)
	nsObjSel, _ := metav1.LabelSelectorAsSelector(ns.ObjectSelector)
	enabled := labels.Set{KeyInject: NamespaceEnabled, "kubernetes.io/metadata.name": "agw-example"}
	plain := labels.Set{"kubernetes.io/metadata.name": "shop"}
	system := labels.Set{"kubernetes.io/metadata.name": "agw-system", KeyInject: "disabled"}
	kube := labels.Set{"kubernetes.io/metadata.name": "kube-system"}
	for _, tc := range []struct {
		what      string
		sel       labels.Selector
		set       labels.Set
		wantMatch bool
	}{
		{"namespace webhook, enabled namespace", nsSel, enabled, true},
		{"namespace webhook, plain namespace", nsSel, plain, false},
		{"pod webhook, plain namespace", podNSSel, plain, true},
		{"pod webhook, enabled namespace (the other webhook's)", podNSSel, enabled, false},
		{"pod webhook, agw-system", podNSSel, system, false},
		{"pod webhook, kube-system", podNSSel, kube, false},
		{"pod webhook, pod labelled true", podObjSel, labels.Set{KeyInject: "true"}, true},
		{"pod webhook, pod not labelled", podObjSel, labels.Set{"app": "x"}, false},
		{"namespace webhook, pod labelled false", nsObjSel, labels.Set{KeyInject: "false"}, false},
		{"namespace webhook, pod not labelled", nsObjSel, labels.Set{"app": "x"}, true},
	} {
		if tc.sel == nil || tc.sel.Matches(tc.set) != tc.wantMatch {
			t.Errorf("%s: match %v, want %v", tc.what, tc.sel != nil && tc.sel.Matches(tc.set), tc.wantMatch)
		}
	}
	// agw-system itself must not ask for injection.
	for _, m := range all {
		if n, ok := m.obj.(*corev1.Namespace); ok && n.Name == "agw-system" && nsSel.Matches(labels.Set(n.Labels)) {
			t.Error("agw-system is selected for injection")
		}
	}
}

// TestExampleOverlay: the example namespace asks for injection; its agents,
// admitted by the injector as the overlay configures it, get the sidecar
// with the overlay's image.
func TestExampleOverlay(t *testing.T) {
	all := loadDeploy(t)
	idx := deployIndex{t, all}
	var k *kustomization
	var patch *appsv1.Deployment
	for _, m := range all {
		switch o := m.obj.(type) {
		case *kustomization:
			if m.file == "overlays/example/kustomization.yaml" {
				k = o
			}
		case *appsv1.Deployment:
			if m.file == "overlays/example/injector-image.yaml" {
				patch = o
			}
		}
	}
	if k == nil || patch == nil || len(k.Images) != 1 {
		t.Fatal("overlay: want a kustomization with one images entry and the injector image patch")
	}
	image := k.Images[0].Name + ":" + k.Images[0].NewTag
	if k.Images[0].NewName != "" {
		image = k.Images[0].NewName + ":" + k.Images[0].NewTag
	}
	over := envOf(t, patch.Spec.Template.Spec.Containers[0])
	if over["AGW_INJECT_IMAGE"] != image {
		t.Errorf("overlay sidecar image %q, but its images: entry makes %q", over["AGW_INJECT_IMAGE"], image)
	}
	cfg, _ := injectorConfig(t, idx.deployment("agw-system", "agw-injector"), over)

	var nsName string
	for _, m := range all {
		if n, ok := m.obj.(*corev1.Namespace); ok && strings.HasPrefix(m.file, "overlays/example/") {
			nsName = n.Name
			if n.Labels[KeyInject] != NamespaceEnabled {
				t.Errorf("namespace %s not labelled %s=%s", n.Name, KeyInject, NamespaceEnabled)
			}
		}
	}
	agents := 0
	for _, m := range all {
		d, ok := m.obj.(*appsv1.Deployment)
		if !ok || d.Namespace != nsName || nsName == "" {
			continue
		}
		agents++
		pod := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: d.Spec.Template.ObjectMeta,
			Spec:       d.Spec.Template.Spec,
		}
		pod.Namespace, pod.GenerateName = nsName, d.Name+"-"
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cfg.review(rewrapReview(t, raw), true)
		if err != nil {
			t.Fatal(err)
		}
		if res.verdict != verdictInjected {
			t.Fatalf("%s: %s (%s)", d.Name, res.verdict, res.detail)
		}
		patched, err := applyPatch(raw, res.review.Response.Patch)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(patched))
		dec.DisallowUnknownFields()
		var out corev1.Pod
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("%s: patched pod: %v", d.Name, err)
		}
		sc := out.Spec.InitContainers[0]
		if sc.Name != SidecarName || sc.Image != image {
			t.Errorf("%s: sidecar %s image %s, want %s", d.Name, sc.Name, sc.Image, image)
		}
		if lvl := d.Spec.Template.Annotations[AnnotationLogLevel]; lvl != "" && envValue(sc, "AGW_LOG_LEVEL") != lvl {
			t.Errorf("%s: annotation log level %s not applied", d.Name, lvl)
		}
	}
	if agents != 2 {
		t.Errorf("%d agent Deployments in %q, want 2", agents, nsName)
	}
}
