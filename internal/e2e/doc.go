// Package e2e holds end-to-end tests of the CDN's parts working together over real sockets: dt
// nodes, edges serving deploys, a redirector choosing among them, and publishing.
package e2e
