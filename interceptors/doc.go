// Package interceptors holds the gRPC interceptor chains that every server
// and client of agw uses: panic recovery, Prometheus metrics and a
// structured access log. One file per interceptor; chain.go assembles the
// explicit chains for each listener.
package interceptors
