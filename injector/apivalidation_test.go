package injector

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// A few of the API server's own validation rules, for what the injector adds
// and what deploy/ declares (strict decoding checks field names, not values).

func validateMeta(m metav1.ObjectMeta) []string {
	var out []string
	if m.Name != "" {
		for _, e := range validation.IsDNS1123Subdomain(m.Name) {
			out = append(out, fmt.Sprintf("name %q: %s", m.Name, e))
		}
	}
	for k, v := range m.Labels {
		for _, e := range validation.IsQualifiedName(k) {
			out = append(out, fmt.Sprintf("label key %q: %s", k, e))
		}
		for _, e := range validation.IsValidLabelValue(v) {
			out = append(out, fmt.Sprintf("label %s value %q: %s", k, v, e))
		}
	}
	for k := range m.Annotations {
		for _, e := range validation.IsQualifiedName(strings.ToLower(k)) {
			out = append(out, fmt.Sprintf("annotation key %q: %s", k, e))
		}
	}
	return out
}

func validateContainer(c corev1.Container, volumes []corev1.Volume) []string {
	var out []string
	bad := func(format string, a ...any) { out = append(out, c.Name+": "+fmt.Sprintf(format, a...)) }
	for _, e := range validation.IsDNS1123Label(c.Name) {
		bad("container name: %s", e)
	}
	seenPort := map[string]bool{}
	for _, p := range c.Ports {
		for _, e := range validation.IsValidPortName(p.Name) {
			bad("port name %q: %s", p.Name, e)
		}
		for _, e := range validation.IsValidPortNum(int(p.ContainerPort)) {
			bad("port %d: %s", p.ContainerPort, e)
		}
		if seenPort[p.Name] {
			bad("port name %q twice", p.Name)
		}
		seenPort[p.Name] = true
	}
	seenEnv := map[string]bool{}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			bad("env %q: %s", e.Name, msg)
		}
		if seenEnv[e.Name] {
			bad("env %q twice", e.Name)
		}
		seenEnv[e.Name] = true
		if e.Value != "" && e.ValueFrom != nil {
			bad("env %q has both value and valueFrom", e.Name)
		}
	}
	for _, m := range c.VolumeMounts {
		found := false
		for _, v := range volumes {
			found = found || v.Name == m.Name
		}
		if !found {
			bad("mounts volume %q, which the pod does not have", m.Name)
		}
		if !strings.HasPrefix(m.MountPath, "/") {
			bad("mount path %q is not absolute", m.MountPath)
		}
	}
	for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if name := p.HTTPGet.Port.StrVal; name != "" && !seenPort[name] {
			bad("probe port %q is not a port of the container", name)
		}
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			bad("probe path %q", p.HTTPGet.Path)
		}
	}
	return out
}

func validatePodSpec(s corev1.PodSpec) []string {
	var out []string
	names := map[string]bool{}
	for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for _, c := range list {
			if names[c.Name] {
				out = append(out, fmt.Sprintf("container name %q twice", c.Name))
			}
			names[c.Name] = true
			out = append(out, validateContainer(c, s.Volumes)...)
		}
	}
	vols := map[string]bool{}
	for _, v := range s.Volumes {
		for _, e := range validation.IsDNS1123Label(v.Name) {
			out = append(out, fmt.Sprintf("volume %q: %s", v.Name, e))
		}
		if vols[v.Name] {
			out = append(out, fmt.Sprintf("volume %q twice", v.Name))
		}
		vols[v.Name] = true
	}
	return out
}
