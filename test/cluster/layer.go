package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Image references the nodes have preloaded (no registry here).
const (
	KubernetesVersion = "v1.34.4"
	PauseImage        = "registry.k8s.io/pause:3.10"
	CoreDNSImage      = "registry.k8s.io/coredns/coredns:v1.12.1"
	YurthubImage      = "docker.io/openyurt/yurthub:v1.7.0"
	YurtManagerImage  = "docker.io/openyurt/yurt-manager:v1.7.0"
	// NodeServantImage is OpenYurt's node-servant (built from its module,
	// with a /bin/sh), the YurtStaticSets' AdvancedRollingUpdate worker.
	NodeServantImage = "docker.io/openyurt/node-servant:v1.7.0"
	// YurthubNextImage is the same yurthub under a second tag, the
	// version an upgrade moves to; YurthubBrokenImage is a "yurthub"
	// that starts and never answers (the pause binary), a bad upgrade.
	YurthubNextImage   = "docker.io/openyurt/yurthub:v1.7.0-next"
	YurthubBrokenImage = "docker.io/openyurt/yurthub:v1.7.0-broken"
	// WebImage is the workload: it serves its pod's name on :8080.
	WebImage  = "yurtadm.e2e/web:v1"
	CRISocket = "unix:///run/containerd/containerd.sock"
)

// The units and files every node has over the base rootfs. They are the
// harness's own, written for this machine kind (docs: shared multi-node
// notes): kubelet as the kubelet package installs it, kubeadm's drop-in
// in its own layer, containerd's settings for cgroup v1 without
// CAP_SYS_RESOURCE, a read-write remount of the cgroup controllers, the
// image import, and short stop timeouts.
var layerFiles = map[string]string{
	"usr/lib/systemd/system/kubelet.service": `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`,
	"etc/containerd/config.toml": `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "` + PauseImage + `"
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`,
	"etc/systemd/system/ynode-cgroup-rw.service": `[Unit]
Description=Make the cgroup v1 controllers writable (systemd-nspawn mounts them read-only)
DefaultDependencies=no
Before=sysinit.target containerd.service kubelet.service
ConditionPathIsReadWrite=!/sys/fs/cgroup/memory

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$c"; done'

[Install]
WantedBy=sysinit.target
`,
	"etc/systemd/system/ynode-images.service": `[Unit]
Description=Import the preloaded images into containerd (there is no registry)
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ynode-import-images

[Install]
WantedBy=multi-user.target
`,
	"usr/local/sbin/ynode-import-images": `#!/bin/sh
# Imports every image tarball under /usr/local/share/ynode-images once: a
# tarball already imported (same size and time) is skipped at the next boot.
set -e
stamp=/var/lib/containerd/.ynode-images
touch "$stamp"
for i in /usr/local/share/ynode-images/*/*.tar; do
  [ -e "$i" ] || continue
  id="$i $(stat -c '%s %Y' "$i")"
  grep -qxF "$id" "$stamp" && continue
  ctr -n k8s.io images import "$i" >/dev/null
  echo "$id" >>"$stamp"
done
`,
	"etc/systemd/system/ynode-etcd.service": `[Unit]
Description=etcd for kubeadm's external etcd (control-plane node)
After=network.target

[Service]
ExecStart=/usr/bin/etcd --name=%H --data-dir=/var/lib/etcd --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:2380
Restart=always

[Install]
WantedBy=multi-user.target
`,
	"etc/systemd/system.conf.d/10-ynode.conf": "[Manager]\nDefaultTimeoutStopSec=15s\nShowStatus=no\n",
	"etc/sysctl.d/90-kubernetes.conf":         "net.ipv4.ip_forward = 1\n",
	// Read-only stand-ins bound over the four host-wide sysctls kubelet
	// would otherwise set for the whole machine (the values it wants).
	"usr/local/share/ynode-sysctl/overcommit_memory": "1\n",
	"usr/local/share/ynode-sysctl/panic":             "10\n",
	"usr/local/share/ynode-sysctl/panic_on_oops":     "1\n",
	"usr/local/share/ynode-sysctl/panic_on_oom":      "0\n",
	"etc/yurtadm/join-config.yaml": `apiVersion: yurtadm.openyurt.io/v1alpha1
kind: JoinConfiguration
# No dummy network device can be created on this kernel (no modules).
yurthubExtraArgs:
- --enable-dummy-if=false
`,
}

// dropInFiles is the kubeadm package's layer.
var dropInFiles = map[string]string{
	"usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`,
}

// enabled are the units enabled in the layer, as package installs do
// (kubelet's package enables kubelet.service).
var enabled = map[string]string{
	"etc/systemd/system/multi-user.target.wants/kubelet.service":      "/usr/lib/systemd/system/kubelet.service",
	"etc/systemd/system/multi-user.target.wants/ynode-images.service": "/etc/systemd/system/ynode-images.service",
	"etc/systemd/system/sysinit.target.wants/ynode-cgroup-rw.service": "/etc/systemd/system/ynode-cgroup-rw.service",
}

// buildLayers writes Dir/layer (binaries, units, configuration) and
// Dir/layer-dropin (kubeadm's drop-in).
func (c *Cluster) buildLayers() error {
	layer, dropin := filepath.Join(c.Dir, "layer"), filepath.Join(c.Dir, "layer-dropin")
	for _, d := range []string{layer, dropin} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	for p, data := range layerFiles {
		mode := os.FileMode(0o644)
		if strings.Contains(p, "/sbin/") {
			mode = 0o755
		}
		if err := writeFile(filepath.Join(layer, p), []byte(data), mode); err != nil {
			return err
		}
	}
	for p, data := range dropInFiles {
		if err := writeFile(filepath.Join(dropin, p), []byte(data), 0o644); err != nil {
			return err
		}
	}
	for link, target := range enabled {
		p := filepath.Join(layer, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	bins := map[string]string{
		"usr/bin/kubelet":         filepath.Join(c.ToolsBin, "kubelet"),
		"usr/bin/kubeadm":         filepath.Join(c.ToolsBin, "kubeadm"),
		"usr/bin/crictl":          filepath.Join(c.ToolsBin, "crictl"),
		"usr/local/bin/yurtadm":   c.Yurtadm,
		"usr/local/bin/ynode-web": filepath.Join(c.Build, "bin", "web"),
		"usr/local/bin/helm":      filepath.Join(c.ToolsBin, "helm"),
	}
	for p, src := range bins {
		if err := copyFile(src, filepath.Join(layer, p), 0o755); err != nil {
			return err
		}
	}
	if err := os.Symlink("yurtadm", filepath.Join(layer, "usr/local/bin/yurtctl")); err != nil {
		return err
	}
	// OpenYurt's charts, where an air-gapped master keeps them.
	charts, err := OpenYurtCharts()
	if err != nil {
		return err
	}
	for _, name := range []string{"yurt-manager", "yurthub"} {
		if err := copyTree(filepath.Join(charts, name), filepath.Join(layer, ChartsInNode, name)); err != nil {
			return err
		}
	}
	// crictl's configuration, as an operator sets it.
	return writeFile(filepath.Join(layer, "etc/crictl.yaml"), []byte("runtime-endpoint: "+CRISocket+"\nimage-endpoint: "+CRISocket+"\ntimeout: 10\n"), 0o644)
}

// image is a container image the harness builds from a binary.
type image struct {
	file, binary, inImage string
	tags                  []string
	tree                  string
	controlPlane          bool // only the control-plane node loads it
}

func (c *Cluster) images() []image {
	tb := func(n string) string { return filepath.Join(c.ToolsBin, n) }
	k8s := func(n string) image {
		return image{file: n + ".tar", binary: tb(n), inImage: "/usr/local/bin/" + n,
			tags: []string{"registry.k8s.io/" + n + ":" + KubernetesVersion}, controlPlane: n != "kube-proxy"}
	}
	bin := filepath.Join(c.Build, "bin")
	ims := []image{
		{file: "pause.tar", binary: filepath.Join(bin, "pause"), inImage: "/pause", tags: []string{PauseImage}},
		k8s("kube-apiserver"), k8s("kube-controller-manager"), k8s("kube-scheduler"), k8s("kube-proxy"),
		{file: "coredns.tar", binary: tb("coredns"), inImage: "/coredns", tags: []string{CoreDNSImage}},
		{file: "yurthub.tar", binary: tb("yurthub"), inImage: "/usr/local/bin/yurthub", tags: []string{YurthubImage, YurthubNextImage}},
		{file: "yurthub-broken.tar", binary: filepath.Join(bin, "pause"), inImage: "/usr/local/bin/yurthub", tags: []string{YurthubBrokenImage}},
		{file: "node-servant.tar", binary: tb("yurt-node-servant"), inImage: "/usr/local/bin/node-servant", tags: []string{NodeServantImage},
			tree: filepath.Join(filepath.Dir(c.Rootfs), "shell-tree")},
		{file: "yurt-manager.tar", binary: tb("yurt-manager"), inImage: "/usr/local/bin/yurt-manager", tags: []string{YurtManagerImage}, controlPlane: true},
		{file: "yurtadm.tar", binary: c.Yurtadm, inImage: "/usr/local/bin/yurtadm", tags: []string{c.YurtadmImage}},
		{file: "web.tar", binary: filepath.Join(bin, "web"), inImage: "/usr/local/bin/web", tags: []string{WebImage}},
	}
	ims[4].tree = filepath.Join(filepath.Dir(c.Rootfs), "iptables-tree")
	return ims
}

// buildImages writes the image tarballs into Dir/images/{common,control-plane}.
func (c *Cluster) buildImages(ctx context.Context) error {
	if err := c.iptablesTree(ctx); err != nil {
		return err
	}
	if err := c.shellTree(ctx); err != nil {
		return err
	}
	for _, sub := range []string{"common", "control-plane"} {
		if err := os.MkdirAll(filepath.Join(c.Build, "images", sub), 0o755); err != nil {
			return err
		}
	}
	for _, im := range c.images() {
		sub := "common"
		if im.controlPlane {
			sub = "control-plane"
		}
		out := filepath.Join(c.Build, "images", sub, im.file)
		// The tags are part of what was built: a tarball made with other
		// tags is made again.
		stamp := out + ".tags"
		if b, _ := os.ReadFile(stamp); fresh(out, im.binary) && string(b) == strings.Join(im.tags, "\n") {
			continue
		}
		args := []string{"-binary", im.binary, "-path", im.inImage, "-o", out}
		for _, t := range im.tags {
			args = append(args, "-tag", t)
		}
		if im.tree != "" {
			args = append(args, "-tree", im.tree)
		}
		if out, err := exec.CommandContext(ctx, filepath.Join(c.Build, "bin", "mkimage"), args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mkimage %s: %v\n%s", im.file, err, out)
		}
		if err := os.WriteFile(stamp, []byte(strings.Join(im.tags, "\n")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fresh reports whether out exists and is newer than src.
func fresh(out, src string) bool {
	o, err := os.Stat(out)
	if err != nil {
		return false
	}
	s, err := os.Stat(src)
	return err == nil && o.ModTime().After(s.ModTime())
}

// iptablesTree copies the node rootfs's iptables (nft backend) with the
// libraries and extensions it loads into Dir/iptables-tree, for
// kube-proxy's image: kube-proxy runs iptables-restore from its image.
func (c *Cluster) iptablesTree(ctx context.Context) error {
	dst := filepath.Join(filepath.Dir(c.Rootfs), "iptables-tree")
	if _, err := os.Stat(filepath.Join(dst, "usr/sbin/xtables-nft-multi")); err == nil {
		return nil
	}
	files := []string{"/usr/sbin/xtables-nft-multi"}
	exts, _ := filepath.Glob(filepath.Join(c.Rootfs, "usr/lib/*-linux-gnu/xtables/*.so"))
	for _, e := range exts {
		files = append(files, strings.TrimPrefix(e, c.Rootfs))
	}
	links := map[string]string{}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore",
		"iptables-nft", "iptables-nft-save", "iptables-nft-restore", "ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore"} {
		links["usr/sbin/"+n] = "xtables-nft-multi"
	}
	return c.libTree(ctx, dst, files, links)
}

// shellTree copies the node rootfs's dash with the libraries it loads into
// Dir/shell-tree, as /bin/sh: OpenYurt's YurtStaticSet controller runs its
// upgrade workers as `/bin/sh -c "/usr/local/bin/node-servant ..."`.
func (c *Cluster) shellTree(ctx context.Context) error {
	dst := filepath.Join(filepath.Dir(c.Rootfs), "shell-tree")
	if _, err := os.Stat(filepath.Join(dst, "usr/bin/sh")); err == nil {
		return nil
	}
	return c.libTree(ctx, dst, []string{"/usr/bin/dash"}, map[string]string{"usr/bin/sh": "dash"})
}

// libTree copies files of the node rootfs, with the libraries ldd says
// they load, into dst, keeps the rootfs's merged-/usr links and adds links
// (path in dst -> target).
func (c *Cluster) libTree(ctx context.Context, dst string, files []string, links map[string]string) error {
	_ = os.RemoveAll(dst)
	libs := map[string]bool{}
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "chroot", c.Rootfs, "ldd", f).Output()
		if err != nil {
			return fmt.Errorf("ldd %s in the node rootfs: %v", f, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			for _, w := range strings.Fields(l) {
				if strings.HasPrefix(w, "/") {
					libs[w] = true
				}
			}
		}
	}
	for l := range libs {
		files = append(files, l)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := copyResolved(c.Rootfs, f, dst); err != nil {
			return err
		}
	}
	// Debian 12 has merged /usr: /bin, /sbin, /lib and /lib64 are relative links.
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if t, err := os.Readlink(filepath.Join(c.Rootfs, l)); err == nil {
			if err := os.Symlink(t, filepath.Join(dst, l)); err != nil {
				return err
			}
		}
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(dst, l)); err != nil {
			return err
		}
	}
	return nil
}

// copyResolved copies the file p names inside root into dst at the same
// path, following symlinks the way the node would (absolute targets
// relative to root) and keeping every link on the way as a link.
func copyResolved(root, p, dst string) error {
	cur := p
	for i := 0; i < 20; i++ {
		dir, err := realDir(root, filepath.Dir(cur), 0)
		if err != nil {
			return err
		}
		full := filepath.Join(dir, filepath.Base(cur))
		fi, err := os.Lstat(filepath.Join(root, full))
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return copyFile(filepath.Join(root, full), filepath.Join(dst, full), fi.Mode().Perm())
		}
		t, err := os.Readlink(filepath.Join(root, full))
		if err != nil {
			return err
		}
		link := filepath.Join(dst, full)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(t, link); err != nil {
				return err
			}
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(dir, t)
		}
		cur = t
	}
	return fmt.Errorf("%s: too many symlinks in %s", p, root)
}

// realDir resolves the directory d inside root, component by component.
func realDir(root, d string, depth int) (string, error) {
	if depth > 20 {
		return "", fmt.Errorf("%s: too many symlinks in %s", d, root)
	}
	r := "/"
	for _, comp := range strings.Split(strings.Trim(filepath.Clean(d), "/"), "/") {
		if comp == "" {
			continue
		}
		next := filepath.Join(r, comp)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			r = next
			continue
		}
		t, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(r, t)
		}
		if r, err = realDir(root, t, depth+1); err != nil {
			return "", err
		}
	}
	return r, nil
}

func writeFile(p string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, mode)
}

// copyFile copies src (following symlinks) to dst, hard-linking where it can.
func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	_ = os.Remove(dst)
	if os.Link(real, dst) == nil {
		return nil
	}
	in, err := os.Open(real)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
