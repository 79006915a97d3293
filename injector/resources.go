package injector

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// resources returns the sidecar's resource requirements: the Config's
// defaults, overridden by the pod's annotations ("none" removes a default).
func (c *Config) resources(ann map[string]string) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	var errs []error
	set := func(list *corev1.ResourceList, name corev1.ResourceName, def, key string) {
		v, source := def, "the injector's default"
		if a, ok := ann[key]; ok {
			v, source = a, "annotation "+key
		}
		if v == "" || v == "none" {
			return
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a Kubernetes quantity; use e.g. 100m for CPU or 128Mi for memory, or none", source, truncate(v)))
			return
		}
		if q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("%s %q: must not be negative", source, truncate(v)))
			return
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
	}
	set(&rr.Requests, corev1.ResourceCPU, c.CPURequest, AnnotationCPURequest)
	set(&rr.Requests, corev1.ResourceMemory, c.MemoryRequest, AnnotationMemoryRequest)
	set(&rr.Limits, corev1.ResourceCPU, c.CPULimit, AnnotationCPULimit)
	set(&rr.Limits, corev1.ResourceMemory, c.MemoryLimit, AnnotationMemoryLimit)
	if len(errs) > 0 {
		return rr, errors.Join(errs...)
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := rr.Requests[name]
		lim, hasLim := rr.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("sidecar %s request %s is above its limit %s; raise the limit or lower the request", name, req.String(), lim.String()))
		}
	}
	return rr, errors.Join(errs...)
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
