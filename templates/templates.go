// Package templates holds the files yurtadm writes on a node, embedded in the
// binary and rendered from typed data. Each has a golden test that also
// parses the result back into its real type.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

//go:embed *.tmpl
var files embed.FS

// q quotes a value as a YAML double-quoted scalar (a JSON string is one):
// no value, whatever it holds (newlines, ": ", "#", quotes), can change the
// manifest's structure.
func q(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

var parsed = template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{"q": q}).ParseFS(files, "*.tmpl"))

// Yurthub is the data of the yurthub static pod manifest.
type Yurthub struct {
	Image         string
	Namespace     string
	ServerAddr    string // comma list of https API server URLs
	NodePoolName  string
	WorkingMode   string // edge or cloud
	BootstrapMode string // kubeletcertificate or token
	Verbosity     int
	ExtraArgs     []string // "--flag=value", each a flag yurthub v1.7.0 accepts
}

// KubeletDropIn is the data of the kubelet systemd drop-in.
type KubeletDropIn struct {
	KubeletPath string
}

// RenderYurthub renders the yurthub static pod manifest, parses it back
// into a Pod and checks that it says what d says: the image, the namespace
// and every argument, each one list item.
func RenderYurthub(d Yurthub) ([]byte, error) {
	for name, v := range map[string]string{"Image": d.Image, "Namespace": d.Namespace, "ServerAddr": d.ServerAddr,
		"NodePoolName": d.NodePoolName, "WorkingMode": d.WorkingMode, "BootstrapMode": d.BootstrapMode} {
		if v == "" {
			return nil, fmt.Errorf("render yurthub manifest: %s is empty", name)
		}
	}
	b, err := render("yurthub.yaml.tmpl", d)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		return nil, fmt.Errorf("render yurthub manifest: the result does not parse as a Pod: %w", err)
	}
	if len(pod.Spec.Containers) != 1 {
		return nil, fmt.Errorf("render yurthub manifest: %d containers", len(pod.Spec.Containers))
	}
	ctr := pod.Spec.Containers[0]
	want := append([]string{"--server-addr=" + d.ServerAddr, "--nodepool-name=" + d.NodePoolName, "--working-mode=" + d.WorkingMode,
		"--namespace=" + d.Namespace, "--bootstrap-mode=" + d.BootstrapMode}, d.ExtraArgs...)
	switch {
	case ctr.Image != d.Image:
		return nil, fmt.Errorf("render yurthub manifest: image %q became %q", d.Image, ctr.Image)
	case pod.Namespace != d.Namespace:
		return nil, fmt.Errorf("render yurthub manifest: namespace %q became %q", d.Namespace, pod.Namespace)
	case !hasInOrder(ctr.Command, want):
		return nil, fmt.Errorf("render yurthub manifest: command %q does not hold %q", ctr.Command, want)
	}
	return b, nil
}

// hasInOrder reports whether every element of want is in got, in order.
func hasInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// RenderKubeletDropIn renders kubeadm's kubelet drop-in 10-kubeadm.conf.
func RenderKubeletDropIn(d KubeletDropIn) ([]byte, error) {
	if d.KubeletPath == "" {
		return nil, fmt.Errorf("render kubelet drop-in: KubeletPath is empty")
	}
	return render("10-kubeadm.conf.tmpl", d)
}

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := parsed.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
