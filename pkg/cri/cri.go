// Package cri finds the node's container runtime socket.
package cri

import (
	"fmt"
	"strings"

	"github.com/yurtadm/yurtadm/pkg/host"
)

// Known CRI sockets, in the order they are tried. dockershim is gone since
// Kubernetes 1.24 and is never chosen; Docker Engine needs cri-dockerd.
var Known = []string{
	"/run/containerd/containerd.sock",
	"/var/run/containerd/containerd.sock",
	"/var/run/crio/crio.sock",
	"/run/crio/crio.sock",
	"/var/run/cri-dockerd.sock",
	"/run/cri-dockerd.sock",
}

// Dockershim is the removed Docker socket that must not be used as a CRI socket.
const Dockershim = "/var/run/dockershim.sock"

// Endpoint turns a socket path into the unix:// endpoint kubelet takes.
func Endpoint(socket string) string {
	if strings.Contains(socket, "://") {
		return socket
	}
	return "unix://" + socket
}

// SocketPath strips the unix:// scheme.
func SocketPath(endpoint string) string { return strings.TrimPrefix(endpoint, "unix://") }

// Validate checks a user-given --cri-socket value.
func Validate(endpoint string) error {
	p := SocketPath(endpoint)
	if strings.Contains(p, "://") {
		return fmt.Errorf("CRI socket %q: only unix sockets are supported", endpoint)
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("CRI socket %q: the path must be absolute, e.g. unix:///run/containerd/containerd.sock", endpoint)
	}
	if strings.HasSuffix(p, "dockershim.sock") {
		return fmt.Errorf("CRI socket %q: dockershim was removed in Kubernetes 1.24; use containerd, CRI-O or cri-dockerd", endpoint)
	}
	return nil
}

// Detect returns the endpoint of the one container runtime socket present
// below fs. It fails when none or several different runtimes are found.
func Detect(fs host.FS) (string, error) {
	var found []string
	seen := map[string]bool{}
	for _, s := range Known {
		if !fs.Exists(s) {
			continue
		}
		// /var/run is usually a link to /run: count a runtime once.
		key := strings.TrimPrefix(strings.TrimPrefix(s, "/var"), "/run/")
		if seen[key] {
			continue
		}
		seen[key] = true
		found = append(found, s)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no container runtime socket found (looked for %s); install containerd or CRI-O, or pass --cri-socket", strings.Join(Known, ", "))
	case 1:
		return Endpoint(found[0]), nil
	}
	return "", fmt.Errorf("found several container runtime sockets (%s); choose one with --cri-socket", strings.Join(found, ", "))
}
