package injector

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzReview feeds arbitrary bodies to the AdmissionReview decoding path:
// it must never panic; a body it accepts gets a response for the same uid;
// an allowed patch must apply to the request's pod and yield a Pod.
func FuzzReview(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{},"spec":{"containers":[{"name":"a"}]}}}}`), true)
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"annotations":{"agw.io/sidecar-cpu-limit":"1e400"}},"spec":{"containers":[{"name":"a"}]}}}}`), true)
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{},"Metadata":{"annotations":{"x":"y"}},"spec":{"containers":[{"name":"a"}],"Volumes":[{"name":"v"}]}}}}`), true)
	f.Add([]byte(`null`), false)
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, body []byte, nsOpt bool) {
		res, err := cfg.review(body, nsOpt)
		if err != nil {
			if !errors.Is(err, errBadReview) {
				t.Fatalf("error not marked as a bad review: %v", err)
			}
			return
		}
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("accepted a body that does not decode: %v", err)
		}
		if res.review.Response.UID != in.Request.UID {
			t.Fatalf("uid %q, want %q", res.review.Response.UID, in.Request.UID)
		}
		if _, err := json.Marshal(res.review); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		if p := res.review.Response.Patch; len(p) > 0 {
			patched, err := applyPatch(in.Request.Object.Raw, p)
			if err != nil {
				t.Fatalf("patch does not apply: %v\npatch %s", err, p)
			}
			again, err := cfg.review(rewrapReviewBytes(patched), true)
			if err != nil || again.verdict != verdictSkipped {
				t.Fatalf("patched pod reviewed again: %v %s %s", err, again.verdict, again.detail)
			}
			if !bytes.Contains(patched, []byte(SidecarName)) {
				t.Fatal("patched pod has no sidecar")
			}
		}
	})
}

func rewrapReviewBytes(pod []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       "u",
			"resource":  map[string]string{"version": "v1", "resource": "pods"},
			"operation": "CREATE",
			"object":    json.RawMessage(pod),
		},
	})
	return b
}
