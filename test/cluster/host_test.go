package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The registry keeps the values from before the first cluster while any
// cluster is up, drops a cluster whose state is gone, and disappears with
// the last one.
func TestHostRegistryOutlivesAllButTheLastCluster(t *testing.T) {
	tmp := t.TempDir()
	old := HostShare
	HostShare = filepath.Join(tmp, "clusters.json")
	defer func() { HostShare = old }()
	dirA, dirB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "state.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	add := func(name, dir string, sysctls map[string]string) {
		t.Helper()
		if err := withHost(func(hs *hostShare) error {
			if len(hs.Clusters) == 0 {
				hs.Sysctls = sysctls
			}
			hs.Clusters[name] = dir
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	add("a", dirA, map[string]string{"k": "before"})
	add("b", dirB, map[string]string{"k": "set by a"})
	var seen hostShare
	if err := withHost(func(hs *hostShare) error { seen = *hs; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen.Clusters) != 2 || seen.Sysctls["k"] != "before" {
		t.Fatalf("registry %+v: want both clusters and the value from before the first", seen)
	}
	// a's run was killed: its Dir is gone.
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	if err := withHost(func(hs *hostShare) error { seen = *hs; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := seen.Clusters["a"]; ok || len(seen.Clusters) != 1 {
		t.Fatalf("registry %+v: a cluster without state is still listed", seen)
	}
	c := &Cluster{Config: &Config{Name: "b"}, Dir: dirB}
	if !c.registered() {
		t.Fatal("b not registered")
	}
	if err := withHost(func(hs *hostShare) error { delete(hs.Clusters, "b"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(HostShare); !os.IsNotExist(err) {
		t.Fatalf("registry left after the last cluster: %v", err)
	}
	if c.registered() {
		t.Fatal("b still registered")
	}
}

// flockFile holds its lock until closed, and refuses a symlink.
func TestFlockFileIsExclusiveAndRefusesSymlinks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	f, err := flockFile(p)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := unix.Flock(int(g.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Fatal("a second flock succeeded while the first was held")
	}
	f.Close()
	if err := unix.Flock(int(g.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("the lock is still held after close: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link.lock")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := flockFile(link); err == nil {
		t.Fatal("flockFile followed a symlink")
	}
}
