package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	utilsexec "k8s.io/utils/exec"
)

// DefaultSandboxImage is the pause image of Kubernetes v1.34 (kubeadm's
// default), used when the runtime does not say which it uses.
const DefaultSandboxImage = "registry.k8s.io/pause:3.10"

// Images reads and fills the node's image store through the runtime's
// own tools: crictl for what the CRI offers, ctr (containerd) to import an
// archive, which the CRI cannot.
type Images struct {
	Exec     utilsexec.Interface
	Endpoint string // unix:///run/containerd/containerd.sock
}

// ErrNoImport is returned by Import for a runtime yurtadm cannot load an
// archive into.
var ErrNoImport = errors.New("this container runtime has no archive import yurtadm can drive")

func (i Images) crictl(args ...string) ([]byte, error) {
	return i.Exec.Command("crictl", append([]string{"--runtime-endpoint", i.Endpoint}, args...)...).CombinedOutput()
}

// Present reports whether image is in the runtime's store (`crictl
// inspecti`; short names are normalised by the runtime as kubelet's are).
func (i Images) Present(image string) (bool, error) {
	out, err := i.crictl("inspecti", "-q", image)
	if err == nil {
		return true, nil
	}
	if strings.Contains(strings.ToLower(string(out)), "no such image") {
		return false, nil
	}
	return false, fmt.Errorf("crictl inspecti %s: %v: %s", image, err, strings.TrimSpace(string(out)))
}

// Pull pulls image through the CRI, as kubelet would.
func (i Images) Pull(image string) error {
	if out, err := i.crictl("pull", image); err != nil {
		return fmt.Errorf("crictl pull %s: %v: %s", image, err, lastLine(out))
	}
	return nil
}

// SandboxImage is the pause image the runtime runs pods with (`crictl
// info`: containerd's and CRI-O's config report it), or DefaultSandboxImage
// when it does not say.
func (i Images) SandboxImage() string {
	out, err := i.crictl("info")
	if err != nil {
		return DefaultSandboxImage
	}
	var info struct {
		Config struct {
			SandboxImage string `json:"sandboxImage"`
		} `json:"config"`
	}
	if json.Unmarshal(out, &info) != nil || info.Config.SandboxImage == "" {
		return DefaultSandboxImage
	}
	return info.Config.SandboxImage
}

// containerd says whether the endpoint is containerd's (the only runtime
// whose archive import yurtadm drives).
func (i Images) containerd() bool { return strings.Contains(SocketPath(i.Endpoint), "containerd") }

// ImportHint says how to load an archive into a runtime yurtadm cannot
// import into.
const ImportHint = "with CRI-O, load it into its storage first ('podman load -i <archive>', which shares /var/lib/containers with CRI-O) " +
	"and join without --image-archive; with cri-dockerd, 'docker load -i <archive>'"

// Import loads an OCI or Docker image archive into the runtime's store in
// the namespace kubelet's images live in (containerd: `ctr -n k8s.io
// images import`).
func (i Images) Import(archive string) error {
	if !i.containerd() {
		return ErrNoImport
	}
	out, err := i.Exec.Command("ctr", "--address", SocketPath(i.Endpoint), "-n", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", archive, err, lastLine(out))
	}
	return nil
}

// Export writes images, which must be present, to one archive that Import
// (or `ctr images import`, `docker load`) loads.
func (i Images) Export(archive string, images []string) error {
	if !i.containerd() {
		return ErrNoImport
	}
	args := []string{"--address", SocketPath(i.Endpoint), "-n", "k8s.io", "images", "export", archive}
	for _, img := range images {
		args = append(args, FullName(img))
	}
	out, err := i.Exec.Command("ctr", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images export %s: %v: %s", archive, err, lastLine(out))
	}
	return nil
}

// FullName is image as containerd stores it: docker.io for a name without
// a registry, library/ for a single-name Docker Hub image, :latest without
// a tag or digest.
func FullName(image string) string {
	name := image
	first, _, found := strings.Cut(name, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !found {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	last := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(last, ":") && !strings.Contains(name, "@") {
		name += ":latest"
	}
	return name
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
