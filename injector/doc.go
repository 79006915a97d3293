// Package injector is agw's mutating admission webhook: it adds the agw
// sidecar to the pods that ask for it.
//
// A pod asks for the sidecar when its namespace carries the label
// agw.io/inject=enabled (the webhook configuration routes such pods to
// PathNamespace), or when the pod itself carries the label or annotation
// agw.io/inject: "true" (routed to PathPod; Kubernetes selects webhooks on
// labels only, so in a namespace without the label the pod label is what
// brings the pod to the webhook). A pod opts out with agw.io/inject: "false".
//
// The sidecar is a Kubernetes native sidecar: an init container with
// restartPolicy Always, placed first, with a startup probe on the sidecar's
// /readyz, so the kubelet starts the pod's other containers only once the
// sidecar is ready and stops the sidecar only after them. It learns the pod's
// name, namespace, IP and service account from the downward API (POD_NAME,
// POD_NAMESPACE, POD_IP, POD_SERVICE_ACCOUNT), the control plane address
// (AGW_XDS_SERVER), its log level and its resources from the pod's
// annotations or the injector's Config, and its identity (a SPIFFE X.509
// SVID and trust bundle for peer mutual TLS, AGW_IDENTITY_DIR) from a Secret
// mounted read-only.
//
// Injection is idempotent: a pod that already has the sidecar (its container
// or the agw.io/status annotation) is admitted unchanged. A pod that cannot
// be decoded or carries an invalid agw.io/* annotation is denied with a
// message that says what to change; the webhook never panics on input.
//
// The patch is an RFC 6902 JSON patch made of "add" operations only, built
// here (the three operations it needs are simpler than a dependency).
package injector
