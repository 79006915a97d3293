package injector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// verdict is what became of one review (the metric label).
type verdict string

const (
	verdictInjected verdict = "injected"
	verdictSkipped  verdict = "skipped"
	verdictDenied   verdict = "denied"
	verdictIgnored  verdict = "ignored" // not a pod CREATE: admitted unchanged
)

// errBadReview marks a body that is not an admission.k8s.io/v1
// AdmissionReview request; the server answers it with HTTP 400.
var errBadReview = errors.New("not an admission.k8s.io/v1 AdmissionReview request")

var podsResource = metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}

// reviewed is the answer to one request and what to log about it.
type reviewed struct {
	review  *admissionv1.AdmissionReview
	verdict verdict
	detail  string // reason for skipped, ignored or denied
	// namespace and pod name for the log (generateName + "*" on create).
	namespace, pod string
}

// review answers the AdmissionReview in body. namespaceOptIn says that the
// webhook was called for a namespace that asked for injection.
func (c *Config) review(body []byte, namespaceOptIn bool) (reviewed, error) {
	var in admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil {
		return reviewed{}, fmt.Errorf("%w: %w", errBadReview, err)
	}
	if in.APIVersion != admissionv1.SchemeGroupVersion.String() || in.Kind != "AdmissionReview" {
		return reviewed{}, fmt.Errorf("%w: apiVersion %q kind %q (configure admissionReviewVersions: [v1])", errBadReview, truncate(in.APIVersion), truncate(in.Kind))
	}
	req := in.Request
	if req == nil {
		return reviewed{}, fmt.Errorf("%w: no request", errBadReview)
	}
	if req.UID == "" {
		return reviewed{}, fmt.Errorf("%w: request has no uid", errBadReview)
	}
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	out := reviewed{
		review:    &admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: resp},
		verdict:   verdictSkipped,
		namespace: req.Namespace,
		pod:       req.Name,
	}
	if req.Resource != podsResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		out.verdict = verdictIgnored
		out.detail = fmt.Sprintf("%s of %s/%s/%s (subresource %q): only pod creations are handled; check the webhook's rules",
			req.Operation, req.Resource.Group, req.Resource.Version, req.Resource.Resource, req.SubResource)
		return out, nil
	}
	pod, err := decodePod(req.Object.Raw)
	if err == nil {
		if out.pod == "" {
			out.pod = pod.Name
		}
		if out.pod == "" {
			out.pod = pod.GenerateName + "*"
		}
		var o outcome
		o, err = c.mutate(pod, namespaceOptIn)
		if err == nil {
			if len(o.ops) == 0 {
				out.detail = o.reason
				return out, nil
			}
			patch, merr := json.Marshal(o.ops)
			if merr != nil {
				return reviewed{}, fmt.Errorf("encode patch: %w", merr)
			}
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType, resp.Warnings = patch, &pt, o.warnings
			out.verdict = verdictInjected
			return out, nil
		}
	}
	resp.Allowed = false
	resp.Result = &metav1.Status{
		Status:  metav1.StatusFailure,
		Message: err.Error(),
		Reason:  metav1.StatusReasonBadRequest,
		Code:    400,
	}
	out.verdict, out.detail = verdictDenied, err.Error()
	return out, nil
}

// decodePod decodes the request's object, which must be a JSON object with
// metadata and spec. Keys match case-sensitively, as in the API server, so
// the patch's paths name the members that the decoded fields came from.
func decodePod(raw []byte) (*corev1.Pod, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, deny("the request carries no pod object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, deny("the pod is not a JSON object: %v", err)
	}
	for _, key := range []string{"metadata", "spec"} {
		v := bytes.TrimSpace(top[key])
		if len(v) == 0 || v[0] != '{' {
			return nil, deny("the pod has no %s object", key)
		}
	}
	var pod corev1.Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &pod); err != nil {
		return nil, deny("the pod does not decode: %v", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, deny("the object is a %q, not a Pod", truncate(pod.Kind))
	}
	return &pod, nil
}
