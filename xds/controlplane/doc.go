// Package controlplane is the agw control plane: the subscription mirror
// (Registry.Mirror), the route index behind a Store, the delta ADS server
// that serves agp.v1.TopicRoute resources through go-control-plane, and the
// admin HTTP endpoints.
//
// Data flow: a sidecar's mirror stream (its lease) changes the Store; each
// change rebuilds the routes of the affected topics and updates a
// go-control-plane LinearCache (behind a MuxCache keyed by type URL); the
// delta ADS server pushes the changed resources, and removals, to every
// subscribed client. Resource versions are content hashes, so a client that
// reconnects (to this replica or another) with initial_resource_versions gets
// only what changed; system versions carry the replica's prefix.
package controlplane
