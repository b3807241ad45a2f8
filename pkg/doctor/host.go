package doctor

import (
	"strings"

	"github.com/yurtadm/yurtadm/pkg/preflight"
)

// hostFixes are the fixes of the preflight checks doctor runs; the
// preflight messages say the same in their own words.
var hostFixes = map[string]string{
	preflight.CheckCrictl:               "install cri-tools (crictl) in PATH",
	preflight.CheckConntrack:            "install conntrack (apt-get install conntrack, yum install conntrack-tools)",
	preflight.CheckCRISocket:            "start the container runtime (systemctl start containerd), or pass --cri-socket",
	preflight.CheckOverlayDType:         "put the runtime's storage on a filesystem with d_type: xfs made with 'mkfs.xfs -n ftype=1', or ext4",
	preflight.CheckSwap:                 "turn swap off ('swapoff -a', and remove it from /etc/fstab), or set failSwapOn: false in kubelet's configuration",
	preflight.CheckIPForward:            "sysctl -w net.ipv4.ip_forward=1, and set it in /etc/sysctl.d/k8s.conf",
	preflight.CheckBridgeNFCallIPTables: "modprobe br_netfilter; sysctl -w net.bridge.bridge-nf-call-iptables=1, and set both at boot",
	preflight.CheckHostname:             "a node name must be lower case: join again with --node-name set to a lower-case name",
	preflight.CheckResolvConf:           "keep 1 to 3 nameserver lines in /etc/resolv.conf",
	preflight.CheckPidsCgroup:           "use a kernel with the pids cgroup controller (Linux 4.3 or newer, CONFIG_CGROUP_PIDS), not disabled with cgroup_disable=pids",
}

// hostFindings runs the preflight checks that matter on a joined node,
// through pkg/preflight itself.
func (d *doctor) hostFindings(skipped map[string]bool) []Finding {
	// Without a name from kubelet's configuration the Hostname check
	// looks at the real host name, as 'yurtadm preflight' does.
	node := d.nodeName()
	if d.nodeGuessed {
		node = ""
	}
	all := preflight.JoinChecks(d.h, preflight.Options{
		NodeName:  node,
		CRISocket: d.o.criSocket,
		Env:       d.dp.env,
	})
	byName := map[string]preflight.Checker{}
	for _, c := range all {
		byName[c.Name()] = c
	}
	var out []Finding
	for _, n := range hostChecks {
		c, found := byName[n]
		name := HostPrefix + n
		if !found || skipped[strings.ToLower(name)] {
			continue
		}
		warnings, errs := c.Check()
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		for _, w := range warnings {
			msgs = append(msgs, w.Error())
		}
		switch {
		case len(errs) > 0:
			out = append(out, fail(name, errs[0].Error(), hostFixes[n], msgs[1:]...))
		case len(warnings) > 0:
			out = append(out, warn(name, warnings[0].Error(), hostFixes[n], msgs[1:]...))
		default:
			out = append(out, ok(name, "passed (as 'yurtadm preflight' checks it)"))
		}
	}
	return out
}
