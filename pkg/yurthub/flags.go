package yurthub

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// flagsVar is the variable kubeadm writes in kubeadm-flags.env and its
// kubelet drop-in expands last on kubelet's command line.
const flagsVar = "KUBELET_KUBEADM_ARGS"

// bootstrapOff is the empty --bootstrap-kubeconfig that SetKubeconfigFlag
// adds after --kubeconfig (it overrides the drop-in's, which comes first).
const bootstrapOff = "--bootstrap-kubeconfig="

// KubeadmFlagsArgs returns the arguments in kubeadm-flags.env content, and
// whether the variable was found.
func KubeadmFlagsArgs(env []byte) ([]string, bool, error) {
	for _, line := range strings.Split(string(env), "\n") {
		v, ok := flagsValue(line)
		if !ok {
			continue
		}
		s, err := unquote(v)
		if err != nil {
			return nil, true, fmt.Errorf("parse %s: %w", flagsVar, err)
		}
		return strings.Fields(s), true, nil
	}
	return nil, false, nil
}

func flagsValue(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, flagsVar+"=") {
		return "", false
	}
	return strings.TrimPrefix(t, flagsVar+"="), true
}

func unquote(v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		return strconv.Unquote(v)
	}
	if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
		return v[1 : len(v)-1], nil
	}
	return v, nil
}

// KubeconfigFlag returns the value of the last --kubeconfig in args
// (kubelet keeps the last value of a repeated flag), or "".
func KubeconfigFlag(args []string) string {
	val := ""
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--kubeconfig="):
			val = strings.TrimPrefix(a, "--kubeconfig=")
		case a == "--kubeconfig" && i+1 < len(args):
			val = args[i+1]
		}
	}
	return val
}

// SetKubeconfigFlag rewrites kubeadm-flags.env content so that kubelet's
// --kubeconfig is path, followed by an empty --bootstrap-kubeconfig= that
// turns kubelet's TLS bootstrap off: with it on, kubelet finds no client
// certificate in yurthub's plain-HTTP kubeconfig, bootstraps again and
// overwrites that kubeconfig with the API server's address, bypassing
// yurthub (seen on the e2e harness). path "" removes both flags. Every other
// line and argument is kept as it is; a file without the variable gets it
// appended. It reports whether the content changed.
func SetKubeconfigFlag(env []byte, path string) ([]byte, bool, error) {
	lines := strings.Split(string(env), "\n")
	found := false
	for i, line := range lines {
		v, ok := flagsValue(line)
		if !ok {
			continue
		}
		found = true
		s, err := unquote(v)
		if err != nil {
			return nil, false, fmt.Errorf("parse %s: %w", flagsVar, err)
		}
		args := strings.Fields(s)
		var out []string
		for j := 0; j < len(args); j++ {
			switch {
			case strings.HasPrefix(args[j], "--kubeconfig="):
				continue
			case args[j] == "--kubeconfig":
				j++
				continue
			case args[j] == bootstrapOff:
				continue
			}
			out = append(out, args[j])
		}
		if path != "" {
			out = append(out, "--kubeconfig="+path, bootstrapOff)
		}
		lines[i] = flagsVar + "=" + strconv.Quote(strings.Join(out, " "))
		break
	}
	if !found {
		if path == "" {
			return env, false, nil
		}
		out := append([]byte(nil), env...)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(out, flagsVar+"="+strconv.Quote("--kubeconfig="+path+" "+bootstrapOff)+"\n"...)
		return out, true, nil
	}
	out := []byte(strings.Join(lines, "\n"))
	return out, !bytes.Equal(out, env), nil
}
