package injector

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenCases: every file in testdata/requests, with the path the webhook
// configuration would call and the verdict it must get.
var goldenCases = []struct {
	name         string
	namespaceOpt bool
	want         verdict
	denyHas      []string // parts of the denial message
	warnHas      string   // part of the one warning
}{
	{name: "namespace-plain", namespaceOpt: true, want: verdictInjected},
	{name: "pod-annotation-overrides", want: verdictInjected},
	{name: "pod-label-no-identity", want: verdictInjected},
	{name: "pod-not-asking", want: verdictSkipped},
	{name: "short-grace-period", namespaceOpt: true, want: verdictInjected, warnHas: "terminationGracePeriodSeconds 5"},
	{name: "already-injected", namespaceOpt: true, want: verdictSkipped},
	{name: "already-injected-by-hand", namespaceOpt: true, want: verdictSkipped},
	{name: "opt-out-annotation", namespaceOpt: true, want: verdictSkipped},
	{name: "opt-out-label", namespaceOpt: true, want: verdictSkipped},
	{name: "malformed-spec", namespaceOpt: true, want: verdictDenied, denyHas: []string{"no spec object"}},
	{name: "malformed-containers", namespaceOpt: true, want: verdictDenied, denyHas: []string{"does not decode", "containers"}},
	{name: "malformed-no-object", namespaceOpt: true, want: verdictDenied, denyHas: []string{"no pod object"}},
	{name: "bad-annotations", namespaceOpt: true, want: verdictDenied, denyHas: []string{"agw.io/xds-server", "agw.io/sidecar-cpu-request", "agw.io/log-level"}},
	{name: "bad-inject-value", namespaceOpt: true, want: verdictDenied, denyHas: []string{`"yes please"`, `use "true" or "false"`}},
	{name: "conflicting-opt-in", namespaceOpt: true, want: verdictDenied, denyHas: []string{"disagree"}},
	{name: "request-above-limit", namespaceOpt: true, want: verdictDenied, denyHas: []string{"memory request 1Gi is above its limit 256Mi"}},
	{name: "host-network", namespaceOpt: true, want: verdictDenied, denyHas: []string{"hostNetwork"}},
	{name: "volume-name-taken", namespaceOpt: true, want: verdictDenied, denyHas: []string{`volume named "agw-identity"`}},
	{name: "not-a-pod", namespaceOpt: true, want: verdictIgnored},
	{name: "pod-update", namespaceOpt: true, want: verdictIgnored},
}

// goldenResponse is what testdata/golden holds: the response, with the
// patch decoded so that a diff is readable.
type goldenResponse struct {
	Verdict  verdict         `json:"verdict"`
	UID      string          `json:"uid"`
	Allowed  bool            `json:"allowed"`
	Patch    json.RawMessage `json:"patch,omitempty"`
	Status   json.RawMessage `json:"status,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

func TestGolden(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	entries, err := filepath.Glob("testdata/requests/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(goldenCases) {
		t.Fatalf("%d request files but %d cases: give every file a case", len(entries), len(goldenCases))
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata/requests", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := cfg.review(body, tc.namespaceOpt)
			if err != nil {
				t.Fatalf("review: %v", err)
			}
			if res.verdict != tc.want {
				t.Fatalf("verdict %s (%s), want %s", res.verdict, res.detail, tc.want)
			}
			resp := res.review.Response
			var in admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			if resp.UID != in.Request.UID {
				t.Errorf("response uid %q, want the request's %q", resp.UID, in.Request.UID)
			}
			if res.review.APIVersion != "admission.k8s.io/v1" || res.review.Kind != "AdmissionReview" {
				t.Errorf("response type %s %s", res.review.APIVersion, res.review.Kind)
			}
			switch tc.want {
			case verdictDenied:
				if resp.Allowed || resp.Result == nil || resp.Result.Code != 400 || len(resp.Patch) != 0 {
					t.Fatalf("want a 400 denial without patch, got %+v", resp)
				}
				for _, part := range tc.denyHas {
					if !strings.Contains(resp.Result.Message, part) {
						t.Errorf("denial %q lacks %q", resp.Result.Message, part)
					}
				}
			case verdictInjected:
				if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Fatalf("want an allowed JSONPatch response, got %+v", resp)
				}
				checkInjected(t, &cfg, in.Request.Object.Raw, resp.Patch)
				if tc.warnHas == "" && len(resp.Warnings) > 0 || tc.warnHas != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.warnHas)) {
					t.Errorf("warnings %q, want %q", resp.Warnings, tc.warnHas)
				}
			default:
				if !resp.Allowed || len(resp.Patch) != 0 || resp.PatchType != nil || resp.Result != nil {
					t.Fatalf("want allowed unchanged, got %+v", resp)
				}
			}
			compareGolden(t, tc.name, res)
		})
	}
}

func compareGolden(t *testing.T, name string, res reviewed) {
	t.Helper()
	resp := res.review.Response
	g := goldenResponse{Verdict: res.verdict, UID: string(resp.UID), Allowed: resp.Allowed, Patch: resp.Patch, Warnings: resp.Warnings}
	if resp.Result != nil {
		s, err := json.Marshal(resp.Result)
		if err != nil {
			t.Fatal(err)
		}
		g.Status = s
	}
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata/golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./injector -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// checkInjected applies the patch to the pod, decodes the result strictly as
// a core/v1 Pod and checks the sidecar and that nothing else changed; then
// reviews the patched pod again, which must be left alone.
func checkInjected(t *testing.T, cfg *Config, raw, patch []byte) {
	t.Helper()
	patched, err := applyPatch(raw, patch)
	if err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	after := decodePodStrict(t, patched)
	before := decodePodStrict(t, raw)
	for _, p := range append(validateMeta(after.ObjectMeta), validatePodSpec(after.Spec)...) {
		t.Errorf("patched pod: %s", p)
	}

	if len(after.Spec.InitContainers) != len(before.Spec.InitContainers)+1 {
		t.Fatalf("init containers %d, want %d", len(after.Spec.InitContainers), len(before.Spec.InitContainers)+1)
	}
	sc := after.Spec.InitContainers[0]
	if sc.Name != SidecarName || sc.Image != cfg.Image || !reflect.DeepEqual(sc.Args, []string{"sidecar"}) {
		t.Errorf("first init container %s %s %v, want the sidecar", sc.Name, sc.Image, sc.Args)
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar restartPolicy %v, want Always (a native sidecar)", sc.RestartPolicy)
	}
	if p := sc.StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("sidecar startup probe %+v, want GET /readyz", p)
	} else if port := namedPort(sc, p.HTTPGet.Port.StrVal); port != AdminPort {
		t.Errorf("startup probe port %q resolves to %d, want the admin port %d", p.HTTPGet.Port.String(), port, AdminPort)
	}
	fields := map[string]string{}
	for _, e := range sc.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name, path := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP", "POD_SERVICE_ACCOUNT": "spec.serviceAccountName"} {
		if fields[name] != path {
			t.Errorf("env %s from %q, want the downward API field %s", name, fields[name], path)
		}
	}
	if _, localOnly := envLookup(sc, "AGW_PEER_LISTEN"); localOnly {
		// Without an identity: no peers, no control plane.
		if envValue(sc, "AGW_XDS_SERVER") != "" || envValue(sc, "AGW_IDENTITY_DIR") != "" {
			t.Error("a local-only sidecar has a control plane or an identity")
		}
	} else if envValue(sc, "AGW_XDS_SERVER") == "" {
		t.Error("no AGW_XDS_SERVER")
	}
	if len(before.Spec.InitContainers) > 0 && !reflect.DeepEqual(after.Spec.InitContainers[1:], before.Spec.InitContainers) {
		t.Error("the pod's own init containers changed")
	}
	if !reflect.DeepEqual(after.Spec.Containers, before.Spec.Containers) {
		t.Error("the pod's containers changed")
	}
	if after.Annotations[AnnotationStatus] != StatusInjected {
		t.Errorf("annotation %s = %q", AnnotationStatus, after.Annotations[AnnotationStatus])
	}
	for k, v := range before.Annotations {
		if after.Annotations[k] != v {
			t.Errorf("annotation %s changed from %q to %q", k, v, after.Annotations[k])
		}
	}
	if dir := envValue(sc, "AGW_IDENTITY_DIR"); dir != "" {
		var vol *corev1.Volume
		for i := range after.Spec.Volumes {
			if after.Spec.Volumes[i].Name == IdentityVolume {
				vol = &after.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil || len(sc.VolumeMounts) != 1 || sc.VolumeMounts[0].Name != IdentityVolume || dir != sc.VolumeMounts[0].MountPath {
			t.Errorf("identity files in %s but identity volume %+v, mounts %+v", dir, vol, sc.VolumeMounts)
		}
	}
	if len(after.Spec.Volumes) < len(before.Spec.Volumes) || (len(before.Spec.Volumes) > 0 && !reflect.DeepEqual(after.Spec.Volumes[:len(before.Spec.Volumes)], before.Spec.Volumes)) {
		t.Error("the pod's own volumes changed")
	}

	// Idempotent: the patched pod, reviewed again, is left alone.
	again := rewrapReview(t, patched)
	res, err := cfg.review(again, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.verdict != verdictSkipped || res.detail != "already injected" {
		t.Errorf("second review: %s (%s), want skipped: already injected", res.verdict, res.detail)
	}
}

func decodePodStrict(t *testing.T, raw []byte) *corev1.Pod {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var pod corev1.Pod
	if err := dec.Decode(&pod); err != nil {
		t.Fatalf("patched pod does not decode as a core/v1 Pod: %v", err)
	}
	return &pod
}

func namedPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// rewrapReview makes an AdmissionReview creating pod.
func rewrapReview(t testing.TB, pod []byte) []byte {
	t.Helper()
	r := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       "00000000-0000-4000-8000-000000000099",
			"kind":      map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"namespace": "shop",
			"operation": "CREATE",
			"userInfo":  map[string]any{},
			"object":    json.RawMessage(pod),
		},
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkReview(b *testing.B) {
	cfg := DefaultConfig()
	body, err := os.ReadFile("testdata/requests/pod-annotation-overrides.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		res, err := cfg.review(body, false)
		if err != nil || res.verdict != verdictInjected {
			b.Fatal(err, res.verdict)
		}
	}
}
