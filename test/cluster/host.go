package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Clusters of different names run side by side (hack/e2e-multinode.sh
// runs its two packages at once): each has its own Dir, bridge, subnet,
// FORWARD chain and node names. What they share is kept here: the host
// sysctls, set while any cluster is up and restored when the last one goes,
// and the build directory, written by one Create at a time.

// HostShare is where the clusters up on this host are registered, with
// the host's sysctls from before the first (HostShare.lock serialises it).
var HostShare = "/run/yurtadm-clusters.json"

type hostShare struct {
	// Sysctls are the host's values before the first cluster came up.
	Sysctls map[string]string `json:"sysctls"`
	// Clusters are the clusters up, by name, with their Dir.
	Clusters map[string]string `json:"clusters"`
}

// withHost runs fn on the host's registry under its lock and writes it
// back (removes it once no cluster is left). Entries whose Dir has no
// state.json any more (a run killed before its Delete) are dropped first.
func withHost(fn func(*hostShare) error) error {
	lock, err := flockFile(HostShare + ".lock")
	if err != nil {
		return err
	}
	defer lock.Close()
	hs := hostShare{Sysctls: map[string]string{}, Clusters: map[string]string{}}
	if b, err := os.ReadFile(HostShare); err == nil {
		if err := json.Unmarshal(b, &hs); err != nil {
			return fmt.Errorf("%s: %w", HostShare, err)
		}
		if hs.Sysctls == nil {
			hs.Sysctls = map[string]string{}
		}
		if hs.Clusters == nil {
			hs.Clusters = map[string]string{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for name, dir := range hs.Clusters {
		if !exists(filepath.Join(dir, "state.json")) {
			delete(hs.Clusters, name)
		}
	}
	if err := fn(&hs); err != nil {
		return err
	}
	if len(hs.Clusters) == 0 {
		if err := os.Remove(HostShare); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(hs, "", "  ")
	if err != nil {
		return err
	}
	tmp := HostShare + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, HostShare)
}

// claimHost registers c and sets the host sysctls; the first cluster up
// records the values they had.
func (c *Cluster) claimHost() error {
	return withHost(func(hs *hostShare) error {
		if len(hs.Clusters) == 0 {
			hs.Sysctls = map[string]string{}
			for k := range hostSysctls {
				hs.Sysctls[k] = readSysctl(k)
			}
		}
		hs.Clusters[c.Config.Name] = c.Dir
		for k, v := range hostSysctls {
			if out, err := exec.Command("sysctl", "-qw", k+"="+v).CombinedOutput(); err != nil {
				return fmt.Errorf("sysctl -w %s=%s: %v: %s", k, v, err, out)
			}
		}
		return nil
	})
}

// releaseHost unregisters c; the last cluster to go restores the host
// sysctls (those recorded when the first came up, or, for a cluster
// brought up before clusters were registered, those in its own state).
func (c *Cluster) releaseHost(own map[string]string) error {
	return withHost(func(hs *hostShare) error {
		delete(hs.Clusters, c.Config.Name)
		if len(hs.Clusters) > 0 {
			return nil
		}
		restore := hs.Sysctls
		if len(restore) == 0 {
			restore = own
		}
		for k, v := range restore {
			if v != "" {
				_ = exec.Command("sysctl", "-qw", k+"="+v).Run()
			}
		}
		hs.Sysctls = map[string]string{}
		return nil
	})
}

// registered reports whether the host's registry still lists c.
func (c *Cluster) registered() bool {
	b, err := os.ReadFile(HostShare)
	if err != nil {
		return false
	}
	var hs hostShare
	if json.Unmarshal(b, &hs) != nil {
		return false
	}
	_, ok := hs.Clusters[c.Config.Name]
	return ok
}

// LockBuild takes the build directory for the caller until unlock is
// called: clusters brought up at once build the same binaries and images
// into it.
func (c *Cluster) LockBuild() (unlock func(), err error) {
	if err := os.MkdirAll(c.Build, 0o755); err != nil {
		return nil, err
	}
	f, err := flockFile(filepath.Join(c.Build, ".lock"))
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// flockFile opens path (created if missing, never through a symlink) and
// holds an exclusive flock on it until the file is closed.
func flockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
