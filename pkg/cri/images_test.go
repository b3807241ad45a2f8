package cri

import (
	"errors"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func TestFullName(t *testing.T) {
	for in, want := range map[string]string{
		"openyurt/yurthub:v1.7.0":           "docker.io/openyurt/yurthub:v1.7.0",
		"busybox":                           "docker.io/library/busybox:latest",
		"registry.k8s.io/pause:3.10":        "registry.k8s.io/pause:3.10",
		"localhost:5000/a/b":                "localhost:5000/a/b:latest",
		"reg.local/x@sha256:0123":           "reg.local/x@sha256:0123",
		"docker.io/openyurt/yurthub:v1.7.0": "docker.io/openyurt/yurthub:v1.7.0",
	} {
		if got := FullName(in); got != want {
			t.Errorf("FullName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImagesThroughTheRuntimesTools(t *testing.T) {
	h, _, sc := hosttest.New(t)
	ep := "unix:///run/containerd/containerd.sock"
	i := Images{Exec: h.Exec, Endpoint: ep}
	sc.Answers["crictl --runtime-endpoint "+ep+" inspecti -q a:1"] = hosttest.Answer{Out: "{}"}
	sc.Answers["crictl --runtime-endpoint "+ep+" inspecti -q b:1"] = hosttest.Answer{Out: `FATA[0000] no such image "b:1" present`, Err: errors.New("exit status 1")}
	sc.Answers["crictl --runtime-endpoint "+ep+" info"] = hosttest.Answer{Out: `{"config":{"sandboxImage":"reg.local/pause:3.9"}}`}
	sc.Answers["ctr --address /run/containerd/containerd.sock -n k8s.io images import /tmp/b.tar"] = hosttest.Answer{Out: "unpacking b:1...done"}
	if ok, err := i.Present("a:1"); !ok || err != nil {
		t.Errorf("a:1 present: %v %v", ok, err)
	}
	if ok, err := i.Present("b:1"); ok || err != nil {
		t.Errorf("b:1 present: %v %v", ok, err)
	}
	if got := i.SandboxImage(); got != "reg.local/pause:3.9" {
		t.Errorf("sandbox image %q", got)
	}
	if err := i.Import("/tmp/b.tar"); err != nil {
		t.Error(err)
	}
	crio := Images{Exec: h.Exec, Endpoint: "unix:///var/run/crio/crio.sock"}
	if err := crio.Import("/tmp/b.tar"); err != ErrNoImport {
		t.Errorf("CRI-O import: %v", err)
	}
	if !strings.Contains(ImportHint, "podman load") {
		t.Error("the hint names no way for CRI-O")
	}
}
