// Package mlsinterop checks agw's MLS library (package mls) against an MLS
// implementation written by someone else: the npm package ts-mls 1.6.4,
// driven through driver.mjs, a small Node.js program that reads JSON-line
// commands on stdin and answers on stdout. MLS messages cross the pipe in
// their RFC 9420 wire encoding (MLSMessage), hex-encoded.
//
// The tests (interop_test.go) run four scenarios for cipher suites 1, 2 and
// 3: a Go-created group joined by a ts-mls member, the reverse, a mixed
// group of four with adds, updates, removals and commits from both sides,
// and external joins. RunComparison times the same group operations in both
// implementations and prints them side by side.
//
// The Node.js packages live in test/node_modules (make test-deps).
package mlsinterop
