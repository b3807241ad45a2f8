package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// image is a container image the harness builds: one static binary.
type image struct {
	file   string // tarball name in Work/images
	binary string // path of the binary on this machine
	inPath string // its path in the image
	tags   []string
}

// Build compiles the project's binaries into Bin (yurtadm with its yurtctl
// link, the systemctl stand-in, the pause binary, mkimage), links the
// tools kubelet, kubeadm and crictl into Bin, and builds the image
// tarballs into Work/images. Go's build cache makes a second run quick.
func (h *Harness) Build(ctx context.Context) error {
	if err := os.MkdirAll(h.Bin, 0o755); err != nil {
		return err
	}
	builds := []struct{ dir, pkg, out string }{
		{h.Root, "./cmd/yurtadm", "yurtadm"},
		{h.Root, "./test/e2e/systemctl", "systemctl"},
		{h.Root, "./test/e2e/images/pause", "pause"},
		{filepath.Join(h.Root, "test", "tools"), "./cmd/mkimage", "mkimage"},
	}
	if pre := os.Getenv(EnvYurtadm); pre != "" {
		// A yurtadm built elsewhere (say, from a clean checkout).
		data, err := os.ReadFile(pre)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvYurtadm, err)
		}
		if err := os.WriteFile(filepath.Join(h.Bin, "yurtadm"), data, 0o755); err != nil {
			return err
		}
		builds = builds[1:]
		h.logf("yurtadm from %s", pre)
	}
	for _, b := range builds {
		h.logf("go build %s", b.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(h.Bin, b.out), b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	links := map[string]string{
		"yurtctl": "yurtadm",
		"kubelet": filepath.Join(h.ToolsBin, "kubelet"),
		"kubeadm": filepath.Join(h.ToolsBin, "kubeadm"),
		"crictl":  filepath.Join(h.ToolsBin, "crictl"),
	}
	for name, target := range links {
		p := filepath.Join(h.Bin, name)
		_ = os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	if err := h.setYurtadmImage(ctx); err != nil {
		return err
	}
	imgDir := filepath.Join(h.Work, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	for _, im := range h.images() {
		args := []string{"-binary", im.binary, "-path", im.inPath, "-o", filepath.Join(imgDir, im.file)}
		for _, t := range im.tags {
			args = append(args, "-tag", t)
		}
		if _, err := h.must(ctx, filepath.Join(h.Bin, "mkimage"), args...); err != nil {
			return fmt.Errorf("build image %s: %w", im.file, err)
		}
	}
	h.logf("built yurtadm, systemctl stand-in and images %s", strings.Join(h.imageTags(), ", "))
	return nil
}

func (h *Harness) images() []image {
	return []image{
		{"pause.tar", filepath.Join(h.Bin, "pause"), "/pause", []string{PauseImage}},
		{"sleeper.tar", filepath.Join(h.Bin, "pause"), "/usr/local/bin/sleeper", []string{SleeperImage}},
		// templates/yurthub.yaml.tmpl runs "yurthub" from PATH.
		{"yurthub.tar", filepath.Join(h.ToolsBin, "yurthub"), "/usr/local/bin/yurthub", []string{YurthubImage}},
		{"yurt-manager.tar", filepath.Join(h.ToolsBin, "yurt-manager"), "/usr/local/bin/yurt-manager", []string{YurtManagerImage}},
		// The project's own image, which convert's node Jobs run
		// (yurtadm on PATH; convert's default tag is its version).
		{"yurtadm.tar", filepath.Join(h.Bin, "yurtadm"), "/usr/local/bin/yurtadm", []string{h.yurtadmImage}},
	}
}

// setYurtadmImage tags the project's image the way convert names it by
// default: docker.io/openyurt/yurtadm:<yurtadm's version>.
func (h *Harness) setYurtadmImage(ctx context.Context) error {
	out, err := h.must(ctx, filepath.Join(h.Bin, "yurtadm"), "version", "-o", "json")
	if err != nil {
		return err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.GitVersion == "" {
		return fmt.Errorf("yurtadm version -o json: %v: %q", err, out)
	}
	h.yurtadmImage = "docker.io/openyurt/yurtadm:" + v.GitVersion
	return nil
}

func (h *Harness) imageTags() []string {
	var tags []string
	for _, im := range h.images() {
		tags = append(tags, im.tags...)
	}
	return tags
}
