package doctor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// Files besides kubeadm-flags.env that set kubelet flags: the drop-in's
// KUBELET_KUBECONFIG_ARGS come first on kubelet's command line, the
// distribution's KUBELET_EXTRA_ARGS last (the last value of a flag wins).
var (
	kubeletDropIns    = []string{constants.KubeletDropInFile, constants.KubeletDropInFileUsr}
	kubeletExtraFiles = []string{"/etc/default/kubelet", "/etc/sysconfig/kubelet"}
)

const kubeletLogFile = "/var/log/kubelet.log"

// kubeletKubeconfigPath works out which kubeconfig kubelet is configured
// with, and which file says so.
func (d *doctor) kubeletKubeconfigPath() (path, from string) {
	path, from = constants.KubeletKubeconfig, "kubelet's default in the kubeadm drop-in"
	for _, f := range kubeletDropIns {
		if b, err := d.h.FS.ReadFile(f); err == nil {
			if v := flagInText(string(b), "kubeconfig"); v != "" {
				path, from = v, f
			}
			break
		}
	}
	if args, err := d.kubeletArgs(); err == nil && args["kubeconfig"] != "" {
		path, from = args["kubeconfig"], constants.KubeletFlagsEnvFile
	}
	for _, f := range kubeletExtraFiles {
		if b, err := d.h.FS.ReadFile(f); err == nil {
			if v := parseFlagsEnv(string(b))["kubeconfig"]; v != "" {
				path, from = v, f
			}
		}
	}
	return path, from
}

// flagInText finds the last --name=value in free text (a systemd unit).
func flagInText(text, name string) string {
	v := ""
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '"' }) {
		if val, found := strings.CutPrefix(f, "--"+name+"="); found {
			v = val
		}
	}
	return v
}

// runningKubelet finds the kubelet process in /proc and returns its pid
// and --kubeconfig ("" when kubelet runs without one).
func (d *doctor) runningKubelet() (pid int, kubeconfig string, found bool) {
	entries, err := d.h.FS.ReadDir("/proc")
	if err != nil {
		return 0, "", false
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := d.h.FS.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil || strings.TrimSpace(string(comm)) != "kubelet" {
			continue
		}
		cmdline, err := d.h.FS.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--kubeconfig="); ok {
				kubeconfig = v
			} else if a == "--kubeconfig" && i+1 < len(args) {
				kubeconfig = args[i+1]
			}
		}
		return p, kubeconfig, true
	}
	return 0, "", false
}

// kubeconfigServer reads the server of the current context's cluster.
func (d *doctor) kubeconfigServer(path string) (string, error) {
	b, err := d.h.FS.ReadFile(path)
	if err != nil {
		return "", err
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", path, err)
	}
	cluster := ""
	if c, found := cfg.Contexts[cfg.CurrentContext]; found {
		cluster = c.Cluster
	}
	if cl, found := cfg.Clusters[cluster]; found {
		return cl.Server, nil
	}
	if len(cfg.Clusters) == 1 {
		for _, cl := range cfg.Clusters {
			return cl.Server, nil
		}
	}
	return "", fmt.Errorf("%s has no cluster for its current context %q", path, cfg.CurrentContext)
}

const repointFix = "point kubelet at yurthub: set --kubeconfig=" + constants.OpenYurtKubeletConfig +
	" in KUBELET_KUBEADM_ARGS of " + constants.KubeletFlagsEnvFile + " (that kubeconfig's server is " +
	constants.YurthubProxyURL + "; 'yurtadm join' writes both), then 'systemctl restart kubelet'"

func (d *doctor) checkKubeletKubeconfig() Finding {
	const name = CheckKubeletKubeconf
	path, from := d.kubeletKubeconfigPath()
	ev := []string{fmt.Sprintf("kubelet's --kubeconfig is %s (from %s)", path, from)}
	server, err := d.kubeconfigServer(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(name, "kubelet's kubeconfig "+path+" does not exist", repointFix, ev...)
	}
	if err != nil {
		return fail(name, "kubelet's kubeconfig cannot be read", repointFix, append(ev, err.Error())...)
	}
	ev = append(ev, fmt.Sprintf("its server is %s", server))
	if strings.TrimSuffix(server, "/") != constants.YurthubProxyURL {
		return fail(name, "kubelet talks to "+server+" directly, not through yurthub: the node loses its pods' state when the cloud link drops",
			repointFix, ev...)
	}
	if _, running, found := d.runningKubelet(); found && running != path {
		shown := running
		if shown == "" {
			shown = "no --kubeconfig"
		}
		ev = append(ev, "the running kubelet has "+shown)
		return warn(name, "kubelet's files point at yurthub, but the running kubelet was started with other flags",
			"restart kubelet to apply its files: 'systemctl restart kubelet'", ev...)
	}
	return ok(name, "kubelet talks to the cluster through yurthub ("+constants.YurthubProxyURL+")", ev...)
}

// kubeletLog returns the end of kubelet's log and where it came from.
func (d *doctor) kubeletLog() (lines []string, from string, err error) {
	const maxBytes = 512 << 10
	if d.o.kubeletLog != "" {
		b, err := readTail(d.o.kubeletLog, maxBytes)
		return splitLines(b), d.o.kubeletLog, err
	}
	if _, err := d.h.Exec.LookPath("journalctl"); err == nil {
		ctx, cancel := d.timeout()
		defer cancel()
		out, err := d.h.Exec.CommandContext(ctx, "journalctl", "-u", constants.KubeletService, "-n", "2000", "--no-pager").Output()
		if err == nil && !strings.Contains(string(out), "-- No entries --") && len(strings.TrimSpace(string(out))) > 0 {
			return splitLines(out), "journalctl -u kubelet", nil
		}
	}
	if d.h.FS.Exists(kubeletLogFile) {
		b, err := readTail(d.h.FS.Path(kubeletLogFile), maxBytes)
		return splitLines(b), kubeletLogFile, err
	}
	return nil, "", nil
}

// readTail reads the last max bytes of a file.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		if _, err := f.Seek(-max, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

func splitLines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// refusedToYurthub tells whether a kubelet log line is a refused
// connection to yurthub's proxy.
func refusedToYurthub(line string) bool {
	return strings.Contains(line, fmt.Sprintf("127.0.0.1:%d", constants.YurthubProxyPort)) && strings.Contains(line, "connection refused")
}

func (d *doctor) checkKubeletLog() Finding {
	const name = CheckKubeletLog
	lines, from, err := d.kubeletLog()
	if err != nil {
		return skip(name, "cannot read kubelet's log", err.Error())
	}
	if from == "" {
		return skip(name, "kubelet's log was not found (no journal entries, no "+kubeletLogFile+")",
			"pass the file kubelet logs to with --"+flagKubeletLog)
	}
	n, last := 0, ""
	for _, l := range lines {
		if refusedToYurthub(l) {
			n++
			last = l
		}
	}
	src := fmt.Sprintf("read the last %d lines of %s", len(lines), from)
	if n == 0 {
		return ok(name, "kubelet's log shows no refused connection to yurthub", src)
	}
	if len(last) > 300 {
		last = last[:300] + "..."
	}
	ev := []string{src, fmt.Sprintf("%d lines with 'connection refused' to 127.0.0.1:%d, the last: %s", n, constants.YurthubProxyPort, last)}
	if !d.hubHealthy() {
		return fail(name, "kubelet cannot reach yurthub (dial tcp 127.0.0.1:10261: connect: connection refused): yurthub is not running",
			"get yurthub running: see the yurthub-manifest and yurthub-container checks", ev...)
	}
	return warn(name, "kubelet could not reach yurthub earlier; yurthub answers now",
		"nothing, if it does not come back; otherwise yurthub keeps restarting: see the yurthub-container check", ev...)
}
