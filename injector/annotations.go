package injector

// Keys and values the injector reads and writes on pods and namespaces.
const (
	// KeyInject is the label or annotation by which a pod asks for the
	// sidecar ("true") or refuses it ("false"), and the namespace label
	// (value NamespaceEnabled) that asks for every pod of the namespace.
	KeyInject = "agw.io/inject"
	// NamespaceEnabled is the value of the namespace label KeyInject that
	// turns injection on for the namespace.
	NamespaceEnabled = "enabled"
	// AnnotationStatus marks an injected pod (value StatusInjected).
	AnnotationStatus = "agw.io/status"
	// StatusInjected is AnnotationStatus's value on an injected pod.
	StatusInjected = "injected"
	// AnnotationXDSServer overrides the control plane address (host:port).
	AnnotationXDSServer = "agw.io/xds-server"
	// AnnotationLogLevel overrides the sidecar log level.
	AnnotationLogLevel = "agw.io/log-level"
	// AnnotationCPURequest, AnnotationMemoryRequest, AnnotationCPULimit and
	// AnnotationMemoryLimit override the sidecar resources (quantities;
	// "none" removes the default).
	AnnotationCPURequest    = "agw.io/sidecar-cpu-request"
	AnnotationMemoryRequest = "agw.io/sidecar-memory-request"
	AnnotationCPULimit      = "agw.io/sidecar-cpu-limit"
	AnnotationMemoryLimit   = "agw.io/sidecar-memory-limit"
	// AnnotationIdentitySecret overrides the Secret holding the sidecar's
	// identity (SPIFFE certificate and trust bundle); "none" runs the
	// sidecar without one, local only: no peers and no control plane (a
	// sidecar never talks to another without MLS).
	AnnotationIdentitySecret = "agw.io/identity-secret"
)

// What the injector adds.
const (
	// SidecarName is the injected init container's name.
	SidecarName = "agw-sidecar"
	// IdentityVolume is the injected volume holding the identity Secret.
	IdentityVolume = "agw-identity"
	// IdentityMountPath is where the sidecar sees IdentityVolume.
	IdentityMountPath = "/var/run/agw/identity"
	// PeerPort and AdminPort are the sidecar's peer data plane and admin
	// (health, readiness, metrics) ports, its defaults.
	PeerPort  = 46358
	AdminPort = 15000
	// SidecarUID is the user the sidecar runs as (the image's nonroot user).
	SidecarUID = 65532
)

// Webhook paths. The webhook configuration sends pods of namespaces labelled
// agw.io/inject=enabled to PathNamespace (inject unless the pod opts out) and
// pods labelled agw.io/inject=true elsewhere to PathPod (inject only when the
// pod asks).
const (
	PathNamespace = "/inject/namespace"
	PathPod       = "/inject/pod"
)
