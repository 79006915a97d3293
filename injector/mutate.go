package injector

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/agwproject/agw/internal/logging"
)

// errDenied marks a pod the injector refuses, with a message for its author.
var errDenied = errors.New("agw injector")

func deny(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errDenied, fmt.Sprintf(format, a...))
}

// outcome is what the injector decided for one pod.
type outcome struct {
	ops      []patchOp // the patch when injected
	reason   string    // why the pod was left alone (when ops is empty)
	warnings []string  // for the pod's author, with an injection
}

// minGraceSeconds is the terminationGracePeriodSeconds below which the
// injector warns: the kubelet stops the agent first and the sidecar with
// what remains of the grace period, and the sidecar drains for up to 10s
// (AGW_SHUTDOWN_TIMEOUT).
const minGraceSeconds = 15

// mutate decides for pod and builds its patch. namespaceOptIn says that the
// pod's namespace asked for injection. An error wraps errDenied.
func (c *Config) mutate(pod *corev1.Pod, namespaceOptIn bool) (outcome, error) {
	want, why, err := wantsSidecar(pod, namespaceOptIn)
	if err != nil {
		return outcome{}, err
	}
	if !want {
		return outcome{reason: why}, nil
	}
	if injected(pod) {
		return outcome{reason: "already injected"}, nil
	}
	if len(pod.Spec.Containers) == 0 {
		return outcome{}, deny("the pod has no containers")
	}
	if pod.Spec.HostNetwork {
		return outcome{}, deny("the pod uses hostNetwork, where the sidecar's ports (%d, %d) would collide with other pods on the node; set %s: \"false\"", PeerPort, AdminPort, KeyInject)
	}
	c2, volume, err := c.sidecar(pod.Annotations)
	if err != nil {
		return outcome{}, err
	}
	if volume != nil {
		for _, v := range pod.Spec.Volumes {
			if v.Name == volume.Name {
				return outcome{}, deny("the pod already has a volume named %q, which the sidecar needs; rename it", v.Name)
			}
		}
	}
	var ops []patchOp
	if len(pod.Annotations) == 0 {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{AnnotationStatus: StatusInjected}})
	} else {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations/" + pointerEscape(AnnotationStatus), Value: StatusInjected})
	}
	// First among the init containers, so that the others may use the mesh
	// too and the kubelet starts everything else only once it is ready.
	if len(pod.Spec.InitContainers) == 0 {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/initContainers", Value: []corev1.Container{c2}})
	} else {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/initContainers/0", Value: c2})
	}
	if volume != nil {
		if len(pod.Spec.Volumes) == 0 {
			ops = append(ops, patchOp{Op: "add", Path: "/spec/volumes", Value: []corev1.Volume{*volume}})
		} else {
			ops = append(ops, patchOp{Op: "add", Path: "/spec/volumes/-", Value: *volume})
		}
	}
	var warnings []string
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && *g < minGraceSeconds {
		warnings = append(warnings, fmt.Sprintf("agw: terminationGracePeriodSeconds %d leaves the sidecar too little time to drain after the agent stops; use at least %d", *g, minGraceSeconds))
	}
	return outcome{ops: ops, warnings: warnings}, nil
}

// wantsSidecar reads the pod's agw.io/inject label and annotation.
func wantsSidecar(pod *corev1.Pod, namespaceOptIn bool) (bool, string, error) {
	label, hasLabel := pod.Labels[KeyInject]
	ann, hasAnn := pod.Annotations[KeyInject]
	var fromLabel, fromAnn bool
	var err error
	if hasLabel {
		if fromLabel, err = parseInject(label, "label"); err != nil {
			return false, "", err
		}
	}
	if hasAnn {
		if fromAnn, err = parseInject(ann, "annotation"); err != nil {
			return false, "", err
		}
	}
	switch {
	case hasLabel && hasAnn && fromLabel != fromAnn:
		return false, "", deny("the pod's label %s=%q and annotation %s=%q disagree; keep one", KeyInject, truncate(label), KeyInject, truncate(ann))
	case hasAnn:
		if !fromAnn {
			return false, "the pod opts out", nil
		}
		return true, "", nil
	case hasLabel:
		if !fromLabel {
			return false, "the pod opts out", nil
		}
		return true, "", nil
	case namespaceOptIn:
		return true, "", nil
	}
	return false, "the pod does not ask for the sidecar", nil
}

func parseInject(v, where string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "enabled":
		return true, nil
	case "false", "disabled":
		return false, nil
	}
	return false, deny("%s %s=%q: use \"true\" or \"false\"", where, KeyInject, truncate(v))
}

// injected reports a pod that already has the sidecar.
func injected(pod *corev1.Pod) bool {
	if pod.Annotations[AnnotationStatus] == StatusInjected {
		return true
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == SidecarName {
				return true
			}
		}
	}
	return false
}

// sidecar builds the sidecar container and, with an identity, its volume.
func (c *Config) sidecar(ann map[string]string) (corev1.Container, *corev1.Volume, error) {
	var errs []error
	xdsServer := c.XDSServer
	if v, ok := ann[AnnotationXDSServer]; ok {
		if err := checkHostPort(v, "annotation "+AnnotationXDSServer, "agw-control-plane.agw-system.svc:18000", false); err != nil {
			errs = append(errs, err)
		}
		xdsServer = v
	}
	logLevel := c.SidecarLogLevel
	if v, ok := ann[AnnotationLogLevel]; ok {
		if _, err := logging.ParseLevel(v); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s %q: use debug, info, warn or error", AnnotationLogLevel, truncate(v)))
		}
		logLevel = strings.ToLower(v)
	}
	secret := c.IdentitySecret
	if v, ok := ann[AnnotationIdentitySecret]; ok {
		secret = v
		if v == "none" {
			secret = ""
		} else if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("annotation %s %q: not a Secret name (%s); or use none", AnnotationIdentitySecret, truncate(v), msgs[0]))
		}
	}
	res, err := c.resources(ann)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = strings.ReplaceAll(e.Error(), "\n", "; ")
		}
		return corev1.Container{}, nil, deny("%s", strings.Join(msgs, "; "))
	}

	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	envs := []corev1.EnvVar{
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("POD_IP", "status.podIP"),
		fieldEnv("POD_SERVICE_ACCOUNT", "spec.serviceAccountName"),
	}
	ports := []corev1.ContainerPort{
		{Name: "agw-peer", ContainerPort: PeerPort, Protocol: corev1.ProtocolTCP},
		{Name: "agw-admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP},
	}
	if secret != "" {
		envs = append(envs, corev1.EnvVar{Name: "AGW_XDS_SERVER", Value: xdsServer})
	} else {
		// Without a workload identity a sidecar has no peers (traffic
		// between sidecars is always MLS): local only, the pod's own
		// agents talk to each other through it; no control plane.
		envs = append(envs, corev1.EnvVar{Name: "AGW_PEER_LISTEN", Value: ""})
		ports = ports[1:]
	}
	envs = append(envs, corev1.EnvVar{Name: "AGW_LOG_LEVEL", Value: logLevel})
	var mounts []corev1.VolumeMount
	var volume *corev1.Volume
	if secret != "" {
		// The sidecar reads tls.crt, tls.key and ca.crt from the
		// directory and follows their rotation.
		envs = append(envs, corev1.EnvVar{Name: "AGW_IDENTITY_DIR", Value: IdentityMountPath})
		if len(c.IdentityTrustDomains) > 0 {
			envs = append(envs, corev1.EnvVar{Name: "AGW_IDENTITY_TRUST_DOMAINS", Value: strings.Join(c.IdentityTrustDomains, ",")})
		}
		envs = append(envs, corev1.EnvVar{Name: "AGW_PEER_NODE_BINDING", Value: c.PeerNodeBinding})
		mounts = []corev1.VolumeMount{{Name: IdentityVolume, MountPath: IdentityMountPath, ReadOnly: true}}
		// The Secret's default file mode (0644) lets the sidecar's user
		// read it without changing the pod's fsGroup; the mount is private
		// to this container.
		volume = &corev1.Volume{Name: IdentityVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
	}

	always := corev1.ContainerRestartPolicyAlways
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("agw-admin")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   1,
			FailureThreshold: failures,
		}
	}
	uid := int64(SidecarUID)
	no, yes := false, true
	return corev1.Container{
		Name:            SidecarName,
		Image:           c.Image,
		ImagePullPolicy: corev1.PullPolicy(c.ImagePullPolicy),
		// The image's sidecar-only build: less idle memory than /agw.
		Command:   []string{"/agw-sidecar"},
		Args:      []string{"sidecar"},
		Ports:     ports,
		Env:       envs,
		Resources: res,
		// A native sidecar: started before, and stopped after, the
		// pod's containers; the startup probe holds them back until the
		// sidecar is ready (up to 2 minutes).
		RestartPolicy:  &always,
		StartupProbe:   probe("/readyz", 1, 120),
		ReadinessProbe: probe("/readyz", 5, 3),
		LivenessProbe:  probe("/healthz", 10, 3),
		VolumeMounts:   mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &uid,
			RunAsGroup:               &uid,
			RunAsNonRoot:             &yes,
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}, volume, nil
}
